"""``lookaside xds-bootstrap``: print the bootstrap file a stock gRPC client needs for ``xds:///``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lookaside.lb.xds.bootstrap import DEFAULT_NODE_ID, bootstrap
from lookaside.security import add_tls_flags

DESCRIPTION = (
    "Print a gRPC xDS bootstrap (JSON) that points stock gRPC clients in any language at the "
    "LB: save it, set GRPC_XDS_BOOTSTRAP=FILE, and dial xds:///SERVICE. The LB serves the "
    "service's Listener, Cluster and endpoints with load-aware weights. Give --tls-ca when the "
    "LB serves TLS (and --tls-cert/--tls-key when it requires client certificates)."
)


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


def run(args: argparse.Namespace) -> int:
    text = json.dumps(
        bootstrap(args.lb, args.node_id, args.tls_ca, args.tls_cert, args.tls_key), indent=2
    )
    if args.output is None:
        sys.stdout.write(text + "\n")
    else:
        args.output.write_text(text + "\n")
    return 0
