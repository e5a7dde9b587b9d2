"""The bootstrap file a stock gRPC client reads to reach the LB's xDS service (gRFC A27).

``xds_servers`` name the LB (several replicas: the client falls back in order,
gRFC A71) with ``channel_creds`` matching how the LB serves (plaintext, TLS or
mutual TLS with file-based certificates, gRFC A65); ``node`` carries an id and
a locality, which grpc-js-xds requires.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lookaside import addresses

DEFAULT_NODE_ID = "lookaside-xds-client"
#: grpc-js-xds refuses a bootstrap whose node has no locality; any value will do.
NODE_LOCALITY = {"region": "local", "zone": "local"}


def channel_creds(ca: Path | None, cert: Path | None, key: Path | None) -> list[dict[str, Any]]:
    """Plaintext, or TLS to the LB (gRFC A65 file-based certificates), matching the LB."""
    if (cert is None) != (key is None):
        raise ValueError("--tls-cert and --tls-key go together")
    if ca is None:
        if cert is not None:
            raise ValueError("--tls-cert needs --tls-ca (the CA of the LB's certificate)")
        return [{"type": "insecure"}]
    config: dict[str, str] = {"ca_certificate_file": str(ca.resolve())}
    if cert is not None and key is not None:
        config["certificate_file"] = str(cert.resolve())
        config["private_key_file"] = str(key.resolve())
    return [{"type": "tls", "config": config}]


def bootstrap(
    lb: str,
    node_id: str = DEFAULT_NODE_ID,
    ca: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> dict[str, Any]:
    """The bootstrap as a dict; ``ValueError`` (one line, naming the flag) on bad input."""
    if not node_id.strip():
        raise ValueError("--node-id: must not be empty")
    creds = channel_creds(ca, cert, key)
    servers = [
        {"server_uri": str(address), "channel_creds": creds, "server_features": ["xds_v3"]}
        for address in addresses.lb_addresses(lb, "--lb")
    ]
    return {
        "xds_servers": servers,
        "node": {"id": node_id, "cluster": "lookaside", "locality": dict(NODE_LOCALITY)},
    }
