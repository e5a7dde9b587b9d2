"""Token loading (file, environment, flags) and the secret-keeping Token type."""

from __future__ import annotations

import argparse
import copy
import hmac
import logging
import pickle
from pathlib import Path
from unittest import mock

import pytest

from lookaside.security import tokens
from lookaside.security.errors import SecurityConfigError
from lookaside.security.tokens import (
    AUTH_TOKEN_ENV,
    CLIENT_TOKEN_ENV,
    AuthTokens,
    Token,
    add_token_flags,
    load_token_file,
    resolve_token,
    token_from_env,
)

SECRET = "s3cr3t-Token_value.123"


def _write(tmp_path: Path, content: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "token"
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_file_token_is_stripped(tmp_path: Path) -> None:
    token = load_token_file(_write(tmp_path, f"  {SECRET}\n\n".encode()))
    assert token.reveal() == SECRET


@pytest.mark.parametrize("content", [b"", b"\n", b"  \t\r\n "])
def test_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(SecurityConfigError, match=rf"token file {path} is empty"):
        load_token_file(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(SecurityConfigError, match=r"cannot read token file .*nope"):
        load_token_file(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecurityConfigError, match="cannot read token file"):
        load_token_file(tmp_path)


@pytest.mark.parametrize(
    "content", [b"two words", b"line1\nline2", "caf\u00e9".encode(), b"\xff\xfe", b"a\x00b"]
)
def test_unusable_content_is_refused_without_echoing_it(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(SecurityConfigError) as info:
        load_token_file(_write(tmp_path, content))
    assert content.decode("latin-1") not in str(info.value)


def test_world_readable_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=tokens.__name__):
        load_token_file(_write(tmp_path, SECRET.encode(), mode=0o644))
    assert "readable by other users" in caplog.text
    assert SECRET not in caplog.text


def test_private_file_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=tokens.__name__):
        load_token_file(_write(tmp_path, SECRET.encode(), mode=0o600))
    assert caplog.records == []


def test_env_token() -> None:
    assert token_from_env("X", {"X": f" {SECRET}\n"}) == Token(SECRET)
    assert token_from_env("X", {}) is None


def test_env_reads_os_environ_by_default() -> None:
    with mock.patch.dict("os.environ", {AUTH_TOKEN_ENV: SECRET}):
        assert token_from_env(AUTH_TOKEN_ENV) == Token(SECRET)


def test_empty_env_is_refused() -> None:
    with pytest.raises(SecurityConfigError, match="X is set but empty"):
        token_from_env("X", {"X": "  "})


def test_file_wins_over_env(tmp_path: Path) -> None:
    path = _write(tmp_path, b"from-file")
    assert resolve_token(path, "X", {"X": "from-env"}) == Token("from-file")
    assert resolve_token(None, "X", {"X": "from-env"}) == Token("from-env")
    assert resolve_token(None, "X", {}) is None


def test_secret_never_printed() -> None:
    token = Token(SECRET)
    for shown in (repr(token), str(token), f"{token}", f"{token!r}", repr(AuthTokens(token))):
        assert SECRET not in shown
    assert "redacted" in repr(token)


def test_token_cannot_be_pickled_but_copies() -> None:
    token = Token(SECRET)
    with pytest.raises(TypeError):
        pickle.dumps(token)
    assert copy.deepcopy(token) is token
    assert copy.copy(AuthTokens(token)).backend is token


def test_matches_and_equality() -> None:
    token = Token(SECRET)
    assert token.matches(SECRET)
    assert token.matches(SECRET.encode())
    assert not token.matches(SECRET[:-1])
    assert not token.matches(SECRET + "x")
    assert not token.matches("")
    assert not token.matches("caf\u00e9")  # non-ASCII input is compared, not a crash
    assert token == Token(SECRET)
    assert token != Token(SECRET + "x")
    assert token != SECRET  # a Token is not equal to its plain string


def test_comparison_is_constant_time() -> None:
    """Both sides are hashed to equal length and compared with hmac.compare_digest."""
    token = Token(SECRET)
    with mock.patch.object(hmac, "compare_digest", wraps=hmac.compare_digest) as spy:
        assert not token.matches("short")
        assert token == Token(SECRET)
    assert spy.call_count == 2
    for call in spy.call_args_list:
        left, right = call.args
        assert len(left) == len(right) == 32


def test_tokens_are_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Token(SECRET))


@pytest.mark.parametrize("bad", ["", "a b", "tab\there", "new\nline", "caf\u00e9", "\x7f"])
def test_token_rejects_what_a_header_cannot_carry(bad: str) -> None:
    with pytest.raises(SecurityConfigError):
        Token(bad)


def _parser(**roles: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_token_flags(parser, **roles)
    return parser


def test_flags_per_role(tmp_path: Path) -> None:
    backend_file = _write(tmp_path, b"backend-token")
    client_file = tmp_path / "client"
    client_file.write_bytes(b"client-token")
    args = _parser(backend=True, client=True).parse_args(
        ["--auth-token-file", str(backend_file), "--client-token-file", str(client_file)]
    )
    assert AuthTokens.from_args(args, {}) == AuthTokens(
        Token("backend-token"), Token("client-token")
    )

    backend_only = _parser(backend=True)
    with pytest.raises(SystemExit):
        backend_only.parse_args(["--client-token-file", str(client_file)])


def test_flags_fall_back_to_env_only_for_declared_tokens() -> None:
    env = {AUTH_TOKEN_ENV: "backend-env", CLIENT_TOKEN_ENV: "client-env"}
    backend_role = AuthTokens.from_args(_parser(backend=True).parse_args([]), env)
    assert backend_role == AuthTokens(backend=Token("backend-env"), client=None)
    client_role = AuthTokens.from_args(_parser(client=True).parse_args([]), env)
    assert client_role == AuthTokens(backend=None, client=Token("client-env"))
    assert (
        AuthTokens.from_args(_parser(backend=True, client=True).parse_args([]), {}) == AuthTokens()
    )


def test_flag_help_documents_env_names() -> None:
    help_text = _parser(backend=True, client=True).format_help()
    assert AUTH_TOKEN_ENV in help_text
    assert CLIENT_TOKEN_ENV in help_text
