"""``lookaside bench-fastpath``: GetBackend per request vs the fast path, side by side."""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.table import Table

from lookaside import policies
from lookaside.bench.fastpath import MODES, medians, run_fastpath_bench

DESCRIPTION = (
    "Start an LB and backends (no simulated work, so the LB's share shows), then run the "
    "same closed-loop load twice, alternating: the seed's flow (GetBackend, then "
    "ComputeTask) and the fast path (LookasideClient with ClientConfig(fast_path=True): "
    "local picks from the WatchBackends stream, then ComputeTask). Prints medians over the "
    "repeats and the ratios fast_path / lb_per_request, including the LB's CPU time per "
    "1,000 requests."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers", type=int, default=4, help="backends to start")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--requests-per-client", type=int, default=200, help="requests each client sends per run"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode, alternating")
    parser.add_argument(
        "--policy", default="round_robin", choices=sorted(policies.POLICIES), help="LB policy"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    runs = asyncio.run(
        run_fastpath_bench(
            args.servers, args.clients, args.requests_per_client, args.repeat, args.policy
        )
    )
    per_mode = {mode: medians(runs, mode) for mode in MODES}
    table = Table(title=f"fast path vs GetBackend per request — medians of {args.repeat} runs")
    for column in ("mode", "p50 ms", "p99 ms", "req/s", "LB CPU ms / 1k req", "errors"):
        table.add_column(column, justify="right")
    for mode, m in per_mode.items():
        table.add_row(
            mode,
            f"{m['p50_ms']:.2f}",
            f"{m['p99_ms']:.2f}",
            f"{m['throughput_rps']:.0f}",
            f"{m['lb_cpu_ms_per_1k']:.1f}",
            f"{m['errors']:.0f}",
        )
    base, fast = per_mode["lb_per_request"], per_mode["fast_path"]
    table.add_row(
        "ratio fast/lb",
        f"{fast['p50_ms'] / base['p50_ms']:.2f}",
        f"{fast['p99_ms'] / base['p99_ms']:.2f}",
        f"{fast['throughput_rps'] / base['throughput_rps']:.2f}",
        f"{fast['lb_cpu_ms_per_1k'] / max(base['lb_cpu_ms_per_1k'], 1e-9):.2f}",
        "",
    )
    Console().print(table)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"runs": [r.__dict__ for r in runs], "medians": per_mode}, out, indent=2)
    return 0 if all(m["errors"] == 0 for m in per_mode.values()) else 1
