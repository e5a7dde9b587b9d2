"""``lookaside bench-xds``: what stock xDS clients do with the weights the LB hands out."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from lookaside import policies
from lookaside.bench.xds_shares import node_missing, run_shares, shares_table

DESCRIPTION = (
    "Start an LB and one backend per --weights entry (b1, b2, ...), then stock gRPC clients "
    "that dial xds:///compute with no lookaside code: grpcio (Python) and grpc-js-xds (Node, "
    "needs 'npm ci' in tests/node). After --settle seconds, count who served each client's "
    "calls for --seconds and print, per backend, the weight the LB pushed (read over ADS), its "
    "share of the pushed weight, and each client's measured share."
)


def number_list(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1,2,7, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("expected positive numbers like 1,2,7")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", type=number_list, default=[1.0, 2.0, 7.0], help="static weight per backend"
    )
    parser.add_argument(
        "--work-ms",
        type=number_list,
        default=None,
        help="simulated work per backend (e.g. 40,40,160); default 20 ms each",
    )
    parser.add_argument(
        "--policy", default="least_load", choices=sorted(policies.POLICIES), help="LB policy"
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight per client")
    parser.add_argument(
        "--clients",
        default="grpcio,node",
        help="stock clients to run, comma-separated: grpcio, node",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    clients = [c.strip() for c in args.clients.split(",") if c.strip()]
    unknown = set(clients) - {"grpcio", "node"}
    if unknown or not clients:
        raise ValueError(f"--clients: choose from grpcio, node (got {args.clients!r})")
    if "node" in clients and (why := node_missing()):
        raise ValueError(f"--clients node: {why}")
    work = args.work_ms or [20.0] * len(args.weights)
    if len(work) != len(args.weights):
        raise ValueError("--work-ms: give one value per --weights entry")
    result = run_shares(
        args.weights, work, args.policy, args.seconds, args.settle, args.concurrency, clients
    )
    rows = shares_table(result)
    table = Table(title=f"xDS shares, policy {result.policy}, {args.seconds:g} s measured")
    for column in rows[0]:
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        table.add_row(*(str(value) for value in row.values()))
    console = Console()
    console.print(table)
    calls = {name: sum(counts.values()) for name, counts in result.measured.items()}
    console.print(f"calls measured: {calls}; failed: {result.failed}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rows": rows, "calls": calls, "failed": result.failed}, out, indent=2)
    return 0
