"""``lookaside bench-replica-cost``: CPU per report, 3 replicas over etcd vs one in-memory LB."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics

from rich.console import Console
from rich.table import Table

from lookaside.bench.replica_cost import (
    GOAL,
    ReplicaCostConfig,
    as_json,
    medians,
    ratios,
    run_replica_cost_bench,
)

_DEFAULTS = ReplicaCostConfig()

DESCRIPTION = (
    "Measure what replication over etcd costs each LB replica per load report. Starts a real "
    "local etcd, then, alternately and --repeat times: one 'lookaside lb --store memory' and "
    "--replicas 'lookaside lb --store etcd://...' replicas, each fed the same simulated fleet "
    "(raw RegisterBackend + StreamLoad streams, spread evenly over the replicas) at the same "
    "total report rate. Prints each set-up's LB CPU time per report ingested (medians), the "
    f"ratio replicas / lone against the goal (at most {GOAL:g}x), and etcd's writes per second."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument("--replicas", type=int, default=d.replicas, help="LB replicas over etcd")
    parser.add_argument(
        "--fleet", type=int, default=d.fleet, help="simulated backends, spread over the replicas"
    )
    parser.add_argument(
        "--report-rate",
        type=float,
        default=d.report_rate,
        help="total streamed reports per second (the same in both set-ups)",
    )
    parser.add_argument("--seconds", type=float, default=d.seconds, help="measured window")
    parser.add_argument("--warmup", type=float, default=d.warmup, help="seconds before it")
    parser.add_argument(
        "--repeat", type=int, default=d.repeat, help="runs of each set-up, alternating"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures as JSON")


def run(args: argparse.Namespace) -> int:
    config = ReplicaCostConfig(
        replicas=args.replicas,
        fleet=args.fleet,
        report_rate=args.report_rate,
        seconds=args.seconds,
        warmup=args.warmup,
        repeat=args.repeat,
    )
    runs = asyncio.run(run_replica_cost_bench(config))
    lone, replicas = medians(runs, "lone"), medians(runs, "replicas")
    per_repeat = ratios(runs)
    ratio = statistics.median(per_repeat)
    table = Table(
        title=f"CPU per report: {config.replicas} replicas over etcd vs one in-memory LB — "
        f"{config.fleet} backends, {config.report_rate:g} reports/s, "
        f"medians of {config.repeat} runs"
    )
    table.add_column("figure")
    table.add_column("lone (memory)", justify="right")
    table.add_column(f"{config.replicas} replicas (etcd)", justify="right")
    table.add_row(
        "LB CPU per report ingested, per process (µs)",
        f"{lone['cpu_us_per_report']:.0f}",
        f"{replicas['cpu_us_per_report']:.0f}",
    )
    table.add_row(
        "reports ingested in the window", f"{lone['reports']:.0f}", f"{replicas['reports']:.0f}"
    )
    table.add_row("etcd writes per second", "", f"{replicas['etcd_writes_per_s']:.1f}")
    table.add_row("etcd CPU (share of one core)", "", f"{replicas['etcd_cpu_share']:.0%}")
    console = Console()
    console.print(table)
    verdict = "met" if ratio <= GOAL else "not met"
    each = ", ".join(f"{r:.2f}" for r in per_repeat)
    console.print(
        f"ratio replicas / lone: {ratio:.2f}x (median of {each}); goal at most {GOAL:g}x: {verdict}"
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(
        f"machine load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores"
    )
    if args.json:
        with open(args.json, "w") as out:
            body = {"config": config.__dict__, "runs": as_json(runs), "ratio": ratio}
            json.dump(body, out, indent=2)
    return 0
