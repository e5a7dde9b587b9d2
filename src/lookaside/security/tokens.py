"""Bearer tokens: loading them from a file or the environment, and comparing them safely.

A :class:`Token` never shows its secret in ``repr``/``str``/f-strings, so it can
sit in config dataclasses and log lines without leaking. Comparison hashes both
sides and uses :func:`hmac.compare_digest`, so timing reveals neither the
content nor the length of the expected token.

The same flag means the same token in every process:

* ``--auth-token-file`` / ``$LOOKASIDE_AUTH_TOKEN`` — the *backend* token, for
  the membership RPCs (the LB requires it, backends present it).
* ``--client-token-file`` / ``$LOOKASIDE_CLIENT_TOKEN`` — the *client* token,
  for the selection RPCs (the LB requires it, clients present it).

A file given on the command line wins over the environment variable.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from lookaside.security.errors import SecurityConfigError

__all__ = [
    "AUTH_TOKEN_ENV",
    "CLIENT_TOKEN_ENV",
    "AuthTokens",
    "Token",
    "add_token_flags",
    "load_token_file",
    "resolve_token",
    "token_from_env",
]

AUTH_TOKEN_ENV: Final = "LOOKASIDE_AUTH_TOKEN"
"""Environment variable holding the backend (membership) token."""
CLIENT_TOKEN_ENV: Final = "LOOKASIDE_CLIENT_TOKEN"
"""Environment variable holding the client (selection) token."""

_REDACTED: Final = "Token(<redacted>)"

log = logging.getLogger(__name__)


def _digest(value: bytes) -> bytes:
    # Comparing fixed-size digests keeps compare_digest from leaking the length.
    return hashlib.sha256(value).digest()


class Token:
    """A bearer secret that does not print itself.

    Only visible ASCII without spaces is accepted: the token travels in an
    HTTP/2 header (``authorization: Bearer <token>``), where anything else is
    either illegal or split by parsers.
    """

    __slots__ = ("_digest", "_secret")

    def __init__(self, secret: str) -> None:
        if not secret:
            raise SecurityConfigError("a bearer token must not be empty")
        if not all("\x21" <= ch <= "\x7e" for ch in secret):
            raise SecurityConfigError(
                "a bearer token may hold only visible ASCII characters (no spaces or newlines)"
            )
        self._secret = secret
        self._digest = _digest(secret.encode("ascii"))

    def reveal(self) -> str:
        """The secret itself, for putting it on the wire. Never log the result."""
        return self._secret

    def matches(self, candidate: str | bytes) -> bool:
        """Constant-time check of a presented token against this one."""
        raw = candidate.encode("utf-8", "replace") if isinstance(candidate, str) else candidate
        return hmac.compare_digest(self._digest, _digest(raw))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return hmac.compare_digest(self._digest, other._digest)

    __hash__ = None  # type: ignore[assignment]  # a hash of the secret is a side channel

    def __repr__(self) -> str:
        return _REDACTED

    __str__ = __repr__

    def __copy__(self) -> Token:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, object]) -> Token:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would write the secret wherever the pickle goes (queues, caches, files).
        raise TypeError("a Token cannot be pickled")


def load_token_file(path: str | os.PathLike[str]) -> Token:
    """Read a token from ``path``, stripping surrounding whitespace (editors add a newline).

    An empty file is refused rather than meaning "no auth": a server started
    with ``--auth-token-file`` must never silently run open.
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"cannot read token file {file}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SecurityConfigError(
            f"token file {file} is not ASCII text (a bearer token must be visible ASCII)"
        ) from None
    if not text:
        raise SecurityConfigError(f"token file {file} is empty")
    try:
        token = Token(text)
    except SecurityConfigError as exc:
        raise SecurityConfigError(f"token file {file}: {exc}") from None
    _warn_if_shared(file)
    return token


def _warn_if_shared(file: Path) -> None:
    """Like ssh: a secret readable by other users deserves a warning (not a refusal)."""
    try:
        mode = file.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning("token file readable by other users path=%s mode=%o", file, mode & 0o777)


def token_from_env(name: str, environ: Mapping[str, str] | None = None) -> Token | None:
    """The token in environment variable ``name``, or ``None`` when it is unset.

    A variable that is set but empty (after stripping) is refused: it is almost
    always a deployment mistake, and running unauthenticated is the wrong guess.
    """
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise SecurityConfigError(f"environment variable {name} is set but empty")
    try:
        return Token(value)
    except SecurityConfigError as exc:
        raise SecurityConfigError(f"environment variable {name}: {exc}") from None


def resolve_token(
    path: str | os.PathLike[str] | None,
    env_var: str,
    environ: Mapping[str, str] | None = None,
) -> Token | None:
    """The token from ``path`` if given, else from ``env_var``, else ``None`` (auth off)."""
    if path is not None:
        return load_token_file(path)
    return token_from_env(env_var, environ)


@dataclass(frozen=True)
class AuthTokens:
    """The two tokens a process may hold; ``None`` means that group of RPCs is open.

    ``backend`` guards membership (RegisterBackend, ReportLoad, StreamLoad,
    Deregister); ``client`` guards selection and client feedback (GetBackend,
    ListBackends, ReportClientStats). See :mod:`lookaside.security.auth`.
    """

    backend: Token | None = None
    client: Token | None = None

    @classmethod
    def from_args(
        cls, args: argparse.Namespace, environ: Mapping[str, str] | None = None
    ) -> AuthTokens:
        """Tokens from flags added by :func:`add_token_flags`, falling back to the environment.

        A flag the parser does not define reads as absent, so each role gets
        only the environment fallback for the tokens it declared.
        """
        backend = client = None
        if hasattr(args, "auth_token_file"):
            backend = resolve_token(args.auth_token_file, AUTH_TOKEN_ENV, environ)
        if hasattr(args, "client_token_file"):
            client = resolve_token(args.client_token_file, CLIENT_TOKEN_ENV, environ)
        return cls(backend=backend, client=client)


def add_token_flags(
    parser: argparse.ArgumentParser, *, backend: bool = False, client: bool = False
) -> None:
    """Add ``--auth-token-file`` (``backend``) and/or ``--client-token-file`` (``client``).

    One definition for the LB (which requires the tokens), backends (which
    present the backend token) and clients (which present the client token).
    """
    group = parser.add_argument_group("authentication")
    if backend:
        group.add_argument(
            "--auth-token-file",
            type=Path,
            default=None,
            metavar="PATH",
            help=(
                "file holding the bearer token for the membership RPCs (RegisterBackend, "
                "ReportLoad, StreamLoad, Deregister): the LB requires it, backends send it. "
                f"Default: ${AUTH_TOKEN_ENV} if set, else no token."
            ),
        )
    if client:
        group.add_argument(
            "--client-token-file",
            type=Path,
            default=None,
            metavar="PATH",
            help=(
                "file holding the bearer token for the client RPCs (GetBackend, ListBackends, "
                "ListServices, ReportClientStats, WatchBackends): the LB requires it, clients "
                "send it. "
                f"Default: ${CLIENT_TOKEN_ENV} if set, else no token."
            ),
        )
