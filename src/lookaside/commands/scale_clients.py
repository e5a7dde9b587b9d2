"""``lookaside scale-clients``: N concurrent clients (the seed's scale_clients.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc import aio
from rich.console import Console

from lookaside import addresses
from lookaside.bench.console import print_run
from lookaside.bench.scale import run_clients, write_summary_json
from lookaside.client.fleet_status import describe_lb_error

DESCRIPTION = (
    "Run N concurrent clients against --lb; each asks the LB for a backend (GetBackend) and "
    "calls it (ComputeTask), the flow of the original report's scale test, with no retries. "
    "Prints avg/min/max/p50/p95/p99 "
    "response time, the LB query and the compute call separately, throughput (completed "
    "requests / wall time of the whole run), errors (a wrong result counts as one) and "
    "requests per backend."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--count", type=int, default=100, help="concurrent clients")
    parser.add_argument(
        "--lb",
        default="127.0.0.1:50051",
        help="the LB server, HOST[:PORT] (port 50051 if left out)",
    )
    parser.add_argument(
        "--requests-per-client",
        type=int,
        default=1,
        help="requests each client sends, one after another",
    )
    parser.add_argument("--service", default="compute", help="service to ask the LB for")
    parser.add_argument("--timeout", type=float, default=60.0, help="deadline per request, seconds")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the figures to PATH as JSON",
    )


def run(args: argparse.Namespace) -> int:
    args.lb = addresses.lb_target(args.lb)
    addresses.check_resolves(args.lb)
    if args.timeout <= 0:
        raise ValueError(f"--timeout: {args.timeout:g} must be above 0 seconds")
    try:
        summary = run_clients(
            args.lb, args.count, args.requests_per_client, args.service, args.timeout
        )
    except aio.AioRpcError as error:  # listing the backends failed: say why in one line
        print(f"lookaside scale-clients: {describe_lb_error(error, args.lb, 2.0)}", file=sys.stderr)
        return 1
    print_run(Console(), summary, f"scale-clients: {args.count} clients against {args.lb}")
    if args.json is not None:
        write_summary_json(
            summary,
            args.json,
            lb=args.lb,
            clients=args.count,
            requests_per_client=args.requests_per_client,
            service=args.service,
        )
    return 0 if summary.errors == 0 else 1
