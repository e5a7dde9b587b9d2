"""``lookaside xds-bootstrap``: print the bootstrap file a stock gRPC client needs for ``xds:///``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lookaside import addresses
from lookaside.security import add_tls_flags

DESCRIPTION = (
    "Print a gRPC xDS bootstrap (JSON) that points stock gRPC clients in any language at the "
    "LB: save it, set GRPC_XDS_BOOTSTRAP=FILE, and dial xds:///SERVICE. The LB serves the "
    "service's Listener, Cluster and endpoints with load-aware weights. Give --tls-ca when the "
    "LB serves TLS (and --tls-cert/--tls-key when it requires client certificates)."
)

DEFAULT_NODE_ID = "lookaside-xds-client"
#: grpc-js-xds refuses a bootstrap whose node has no locality; any value will do.
NODE_LOCALITY = {"region": "local", "zone": "local"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lb",
        default="127.0.0.1:50051",
        help="the LB, HOST:PORT (several replicas: a:1,b:2; the client falls back in order)",
    )
    parser.add_argument(
        "--node-id", default=DEFAULT_NODE_ID, help="node id the client presents (shown in LB logs)"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="write to this file instead of stdout"
    )
    add_tls_flags(parser, serves=False, dials=True)


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


def run(args: argparse.Namespace) -> int:
    text = json.dumps(
        bootstrap(args.lb, args.node_id, args.tls_ca, args.tls_cert, args.tls_key), indent=2
    )
    if args.output is None:
        sys.stdout.write(text + "\n")
    else:
        args.output.write_text(text + "\n")
    return 0
