"""``lookaside bench-channel``: lookaside.channel against stock gRPC round_robin, side by side."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from lookaside.bench.channel import (
    GOAL_P99_RATIO,
    GOAL_THROUGHPUT_RATIO,
    MIXED,
    MODES,
    PAIRS,
    BenchChannelOptions,
    medians,
    ratios,
    run_channel_bench,
)

DEFAULTS = BenchChannelOptions()

DESCRIPTION = (
    "Start an LB and no-op backends of a user-style service, then send the same "
    "closed-loop load of a no-op unary RPC through lookaside.channel (fast path) and "
    "through a stock grpc.aio channel with gRPC's own round_robin over the same "
    "backends, and likewise through lookaside.sync_channel and a stock blocking "
    "channel, alternating run by run, and once per repeat mixed (every task takes "
    "both in turn, call by call). Prints medians over the runs and the ratios "
    f"(goals: throughput >= {GOAL_THROUGHPUT_RATIO}, p99 <= {GOAL_P99_RATIO})."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers", type=int, default=DEFAULTS.servers, help="backends")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULTS.concurrency,
        help="calls in flight: async tasks, or blocking threads for the sync modes",
    )
    parser.add_argument(
        "--requests", type=int, default=DEFAULTS.requests, help="requests per run and mode"
    )
    parser.add_argument(
        "--repeat", type=int, default=DEFAULTS.repeat, help="runs of each mode, alternating"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every run as JSON")


def run(args: argparse.Namespace) -> int:
    for name in ("servers", "concurrency", "requests", "repeat"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1")
    options = BenchChannelOptions(
        servers=args.servers,
        concurrency=args.concurrency,
        requests=args.requests,
        repeat=args.repeat,
    )
    runs = asyncio.run(run_channel_bench(options))
    table = Table(title=f"lookaside.channel vs stock gRPC — medians of {args.repeat} runs")
    for column in ("mode", "req/s", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right")
    for mode in [m for base in MODES for m in (base, base + MIXED)]:
        m = medians(runs, mode)
        table.add_row(
            mode,
            "" if mode.endswith(MIXED) else f"{m['throughput_rps']:.0f}",
            f"{m['p50_ms']:.2f}",
            f"{m['p99_ms']:.2f}",
            f"{m['errors']:.0f}",
        )
    console = Console()
    console.print(table)
    verdicts = {}
    for ours, baseline in PAIRS:
        r = ratios(runs, ours, baseline)
        verdicts[f"{ours}/{baseline}"] = r
        for label, throughput, p99 in (
            ("apart", r["throughput"], r["p99"]),
            ("mixed", r["mixed_throughput"], r["mixed_p99"]),
        ):
            met = throughput >= GOAL_THROUGHPUT_RATIO and p99 <= GOAL_P99_RATIO
            console.print(
                f"{ours} / {baseline} ({label}): throughput ratio {throughput:.3f} "
                f"(goal >= {GOAL_THROUGHPUT_RATIO}), p99 ratio {p99:.3f} "
                f"(goal <= {GOAL_P99_RATIO}) — " + ("goals met" if met else "goals NOT met")
            )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"runs": [asdict(r) for r in runs], "ratios": verdicts}, out, indent=2)
    return 0 if all(r.errors == 0 for r in runs) else 1
