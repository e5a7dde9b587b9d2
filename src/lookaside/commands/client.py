"""``lookaside client``: ask the LB for a backend and run one task on it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.client.lookaside_client import BlockingLookasideClient, LookasideError
from lookaside.model import DEFAULT_SERVICE
from lookaside.security import AuthTokens, TlsConfig, add_tls_flags, add_token_flags

DESCRIPTION = (
    "Ask the LB for a backend (GetBackend), send it TEXT to reverse (ComputeTask), and "
    "print the result and which backend served it. Fails over to another backend on errors."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", metavar="TEXT", help="the string to reverse")
    parser.add_argument("--lb", default="127.0.0.1:50051", help="the LB server, HOST:PORT")
    parser.add_argument("--service", default=DEFAULT_SERVICE, help="service to ask for")
    parser.add_argument(
        "--timeout",
        type=float,
        default=LOOKASIDE_CLIENT_DEFAULTS.timeout,
        help="deadline for the whole request, seconds",
    )
    parser.add_argument(
        "--fast-path",
        action="store_true",
        help="pick locally from the LB's WatchBackends stream instead of asking GetBackend",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with result, backend_id and latency_ms",
    )
    add_token_flags(parser, client=True)
    add_tls_flags(parser, serves=False, dials=True)


def run(args: argparse.Namespace) -> int:
    try:
        config = replace(
            LOOKASIDE_CLIENT_DEFAULTS,
            timeout=args.timeout,
            fast_path=args.fast_path,
            token=AuthTokens.from_args(args).client,
            tls=TlsConfig.from_args(args),
        )
        with BlockingLookasideClient(args.lb, args.service, config) as client:
            reply = client.compute(args.text)
    except LookasideError as error:
        print(f"lookaside client: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "result": reply.result,
                    "backend_id": reply.backend_id,
                    "latency_ms": round(reply.latency_ms, 3),
                }
            )
        )
    else:
        print(f"{reply.result}  (served by {reply.backend_id} in {reply.latency_ms:.1f} ms)")
    return 0
