"""TLS and mutual TLS credentials from PEM files, and the CLI flags that name them.

One :class:`TlsConfig` serves every role, because every process both serves
and dials (backends serve Compute and dial the LB):

* ``--tls-cert``/``--tls-key``: this process's certificate chain and key. A
  server with them serves TLS; when dialing with ``--tls-ca`` they are also
  presented as the client certificate (so give the cert the ``clientAuth``
  extended key usage too if the peer demands mutual TLS).
* ``--tls-ca``: the CA that signs the servers we dial. Setting it turns TLS on
  for outgoing channels; without it they are plaintext.
* ``--tls-client-ca``: servers then require and verify a client certificate
  signed by this CA (mutual TLS).

Files are read and sanity-checked when credentials are built, so a wrong path
stops start-up with a message naming the flag instead of failing later in a
handshake.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import grpc

from lookaside.security.errors import SecurityConfigError

__all__ = [
    "TlsConfig",
    "add_tls_flags",
    "channel_credentials",
    "server_credentials",
]


def _read_pem(path: Path, flag: str, marker: str) -> bytes:
    """The file's bytes, after checking it is readable and holds a PEM block ending in ``marker``.

    ``marker`` is matched at the end of the BEGIN line ("PRIVATE KEY-----" also
    matches "EC PRIVATE KEY" and "RSA PRIVATE KEY").
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(f"{flag}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data or f"{marker}-----".encode() not in data:
        raise SecurityConfigError(f"{flag}: {path} holds no PEM {marker.lower()}")
    return data


def server_credentials(
    cert: Path, key: Path, client_ca: Path | None = None
) -> grpc.ServerCredentials:
    """Server TLS credentials; with ``client_ca`` clients must present a cert it signed."""
    chain = _read_pem(cert, "--tls-cert", "CERTIFICATE")
    private_key = _read_pem(key, "--tls-key", "PRIVATE KEY")
    roots = None if client_ca is None else _read_pem(client_ca, "--tls-client-ca", "CERTIFICATE")
    return grpc.ssl_server_credentials(
        [(private_key, chain)],
        root_certificates=roots,
        require_client_auth=roots is not None,
    )


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """Client TLS credentials trusting ``ca`` (system roots if ``None``), with an optional
    client certificate for mutual TLS."""
    if (cert is None) != (key is None):
        raise SecurityConfigError("--tls-cert and --tls-key must be given together")
    roots = None if ca is None else _read_pem(ca, "--tls-ca", "CERTIFICATE")
    chain = None if cert is None else _read_pem(cert, "--tls-cert", "CERTIFICATE")
    private_key = None if key is None else _read_pem(key, "--tls-key", "PRIVATE KEY")
    return grpc.ssl_channel_credentials(
        root_certificates=roots, private_key=private_key, certificate_chain=chain
    )


@dataclass(frozen=True)
class TlsConfig:
    """The TLS flags of one process; all ``None`` (the default) means plaintext."""

    cert: Path | None = None
    """``--tls-cert``: own certificate chain (PEM); serve TLS, and client cert when dialing."""
    key: Path | None = None
    """``--tls-key``: private key (PEM) for ``cert``."""
    ca: Path | None = None
    """``--tls-ca``: CA bundle to verify servers we dial; turns on TLS for outgoing channels."""
    client_ca: Path | None = None
    """``--tls-client-ca``: CA bundle clients' certs must chain to (mutual TLS when serving)."""

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise SecurityConfigError("--tls-cert and --tls-key must be given together")
        if self.client_ca is not None and self.cert is None:
            raise SecurityConfigError("--tls-client-ca needs the server's own --tls-cert/--tls-key")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TlsConfig:
        """From flags added by :func:`add_tls_flags`; flags a role lacks read as ``None``."""
        return cls(
            cert=getattr(args, "tls_cert", None),
            key=getattr(args, "tls_key", None),
            ca=getattr(args, "tls_ca", None),
            client_ca=getattr(args, "tls_client_ca", None),
        )

    @property
    def serves_tls(self) -> bool:
        return self.cert is not None

    @property
    def dials_tls(self) -> bool:
        return self.ca is not None

    @property
    def mutual(self) -> bool:
        return self.client_ca is not None

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """Credentials for ``add_secure_port``, or ``None``: use ``add_insecure_port``."""
        if self.cert is None or self.key is None:
            return None
        return server_credentials(self.cert, self.key, self.client_ca)

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Credentials for ``secure_channel``, or ``None``: use ``insecure_channel``."""
        if self.ca is None:
            return None
        return channel_credentials(self.ca, self.cert, self.key)


_CERT_USE = {
    (True, False): "serve TLS with it",
    (False, True): "present it as client certificate",
    (True, True): "serve TLS with it, and present it as client certificate when dialing",
}


def add_tls_flags(parser: argparse.ArgumentParser, *, serves: bool, dials: bool) -> None:
    """Add the TLS flags a role needs: ``serves`` (LB, backend) and/or ``dials`` (backend, client).

    One definition, so the LB, backends and clients spell and document them alike.
    """
    group = parser.add_argument_group("TLS")
    if serves or dials:
        group.add_argument(
            "--tls-cert",
            type=Path,
            metavar="PEM",
            help=f"certificate chain of this process; {_CERT_USE[serves, dials]} (needs --tls-key)",
        )
        group.add_argument("--tls-key", type=Path, metavar="PEM", help="private key for --tls-cert")
    if dials:
        group.add_argument(
            "--tls-ca",
            type=Path,
            metavar="PEM",
            help="CA that signs the servers this process dials; turns on TLS (default: plaintext)",
        )
    if serves:
        group.add_argument(
            "--tls-client-ca",
            type=Path,
            metavar="PEM",
            help="require client certificates signed by this CA (mutual TLS)",
        )
