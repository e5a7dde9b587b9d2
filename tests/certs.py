"""Throwaway PKI for TLS tests, made at test time so no key is ever committed.

:func:`make_pki` writes into a directory (use ``tmp_path``): a CA, a server
certificate for ``localhost``/``127.0.0.1``/``::1`` signed by it, a client
certificate signed by it, a *peer* certificate for the same names that may
both serve and act as a client (a backend under mutual TLS serves Compute and
dials the LB with one certificate), and an unrelated second CA with its own
client certificate (for "wrong CA" tests). EC P-256 keeps generation fast.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Pki", "make_pki"]

_VALIDITY = dt.timedelta(days=1)
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files :func:`make_pki` wrote."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca_cert: Path
    """A CA that signed neither the server nor ``client_cert``."""
    other_client_cert: Path
    """A client certificate signed by ``other_ca_cert``: a stranger to the server."""
    other_client_key: Path
    peer_cert: Path
    """Signed by ``ca_cert`` for the server's names, with both server and client usage."""
    peer_key: Path


@dataclass(frozen=True)
class _Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lookaside tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _write(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _make_ca(directory: Path, stem: str) -> tuple[_Issuer, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"{stem} CA")
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _Issuer(name, key), _write(directory / f"{stem}-ca.pem", cert)


def _make_leaf(
    directory: Path,
    stem: str,
    issuer: _Issuer,
    usage: x509.ObjectIdentifier | list[x509.ObjectIdentifier],
    san: x509.SubjectAlternativeName | None = None,
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        _builder(_name(stem), issuer.name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(usage if isinstance(usage, list) else [usage]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(issuer.key, hashes.SHA256())
    return _write(directory / f"{stem}.pem", cert), _write_key(directory / f"{stem}.key", key)


def make_pki(directory: Path) -> Pki:
    """Create the CAs and certificates in ``directory`` and return their paths."""
    ca, ca_cert = _make_ca(directory, "test")
    other_ca, other_ca_cert = _make_ca(directory, "other")
    server_san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
    )
    server_cert, server_key = _make_leaf(
        directory, "server", ca, ExtendedKeyUsageOID.SERVER_AUTH, server_san
    )
    client_cert, client_key = _make_leaf(directory, "client", ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    peer_cert, peer_key = _make_leaf(directory, "peer", ca, both, server_san)
    other_cert, other_key = _make_leaf(
        directory, "other-client", other_ca, ExtendedKeyUsageOID.CLIENT_AUTH
    )
    return Pki(
        ca_cert=ca_cert,
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
        other_ca_cert=other_ca_cert,
        other_client_cert=other_cert,
        other_client_key=other_key,
        peer_cert=peer_cert,
        peer_key=peer_key,
    )
