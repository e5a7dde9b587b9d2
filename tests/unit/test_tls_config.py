"""TlsConfig and its flags: validation and clear errors for unusable files."""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc
import pytest

from lookaside.security.errors import SecurityConfigError
from lookaside.security.tls import (
    TlsConfig,
    add_tls_flags,
    channel_credentials,
    server_credentials,
)
from tests.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_plaintext_by_default() -> None:
    config = TlsConfig()
    assert config.server_credentials() is None
    assert config.channel_credentials() is None
    assert not (config.serves_tls or config.dials_tls or config.mutual)


def test_cert_and_key_go_together(pki: Pki) -> None:
    with pytest.raises(SecurityConfigError, match="--tls-cert and --tls-key"):
        TlsConfig(cert=pki.server_cert)
    with pytest.raises(SecurityConfigError, match="--tls-cert and --tls-key"):
        TlsConfig(key=pki.server_key)
    with pytest.raises(SecurityConfigError, match="--tls-cert and --tls-key"):
        channel_credentials(pki.ca_cert, cert=pki.client_cert)


def test_client_ca_needs_a_server_cert(pki: Pki) -> None:
    with pytest.raises(SecurityConfigError, match="--tls-client-ca needs"):
        TlsConfig(client_ca=pki.ca_cert)


def test_builds_credentials(pki: Pki) -> None:
    config = TlsConfig(
        cert=pki.server_cert, key=pki.server_key, ca=pki.ca_cert, client_ca=pki.ca_cert
    )
    assert config.serves_tls and config.dials_tls and config.mutual
    assert isinstance(config.server_credentials(), grpc.ServerCredentials)
    assert isinstance(config.channel_credentials(), grpc.ChannelCredentials)


def test_unreadable_file_names_flag_and_path(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(SecurityConfigError, match=r"--tls-key: cannot read .*missing\.pem"):
        server_credentials(pki.server_cert, missing)
    with pytest.raises(SecurityConfigError, match=r"--tls-ca: cannot read"):
        channel_credentials(missing)
    with pytest.raises(SecurityConfigError, match=r"--tls-client-ca: cannot read"):
        server_credentials(pki.server_cert, pki.server_key, client_ca=missing)


def test_swapped_or_non_pem_files_are_refused(tmp_path: Path, pki: Pki) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(SecurityConfigError, match=r"--tls-cert: .* holds no PEM certificate"):
        server_credentials(garbage, pki.server_key)
    with pytest.raises(SecurityConfigError, match=r"--tls-key: .* holds no PEM private key"):
        server_credentials(pki.server_cert, pki.server_cert)  # cert given as key
    with pytest.raises(SecurityConfigError, match=r"--tls-cert: .* holds no PEM certificate"):
        server_credentials(pki.server_key, pki.server_key)  # key given as cert


def test_key_file_content_never_in_errors(pki: Pki) -> None:
    with pytest.raises(SecurityConfigError) as info:
        server_credentials(pki.server_key, pki.server_key)
    key_lines = pki.server_key.read_text().splitlines()
    assert not any(line in str(info.value) for line in key_lines)


def _parse(argv: list[str], *, serves: bool, dials: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_tls_flags(parser, serves=serves, dials=dials)
    return parser.parse_args(argv)


def test_flags_per_role(pki: Pki) -> None:
    lb_flags = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    lb = _parse([*lb_flags, "--tls-client-ca", str(pki.ca_cert)], serves=True, dials=False)
    assert TlsConfig.from_args(lb) == TlsConfig(
        cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca_cert
    )
    client = _parse(["--tls-ca", str(pki.ca_cert)], serves=False, dials=True)
    assert TlsConfig.from_args(client) == TlsConfig(ca=pki.ca_cert)
    with pytest.raises(SystemExit):
        _parse(["--tls-client-ca", str(pki.ca_cert)], serves=False, dials=True)
    with pytest.raises(SystemExit):
        _parse(["--tls-ca", str(pki.ca_cert)], serves=True, dials=False)
    assert TlsConfig.from_args(_parse([], serves=True, dials=True)) == TlsConfig()
