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
    BASELINES,
    GOAL,
    SETUPS,
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
    "total report rate, and one 'lookaside lb --store memory' fed what one replica is fed "
    "(one part of the fleet at its share of the rate). Prints each set-up's LB CPU time per "
    "report ingested (medians), the ratios replicas / each lone LB against the goal (at most "
    f"{GOAL:g}x), and etcd's writes per second."
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
    parser.add_argument("--repeat", type=int, default=d.repeat, help="runs of each set-up, in turn")
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures as JSON")


LABELS = {
    "lone": "one LB, whole fleet and rate (memory)",
    "lone_share": "one LB, one replica's share (memory)",
}


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
    per_setup = {setup: medians(runs, setup) for setup in SETUPS}
    share = config.fleet // config.replicas
    table = Table(
        title=f"CPU per report: {config.replicas} replicas over etcd vs one in-memory LB — "
        f"{config.fleet} backends, {config.report_rate:g} reports/s in all, "
        f"medians of {config.repeat} runs"
    )
    table.add_column("set-up")
    table.add_column("backends x reports/s per LB", justify="right")
    table.add_column("LB CPU per report (µs)", justify="right")
    table.add_column("reports in the window", justify="right")
    table.add_column("etcd writes/s", justify="right")
    table.add_column("etcd CPU", justify="right")
    feeds = {
        "lone": (config.fleet, config.report_rate),
        "lone_share": (share, config.report_rate / config.replicas),
        "replicas": (share, config.report_rate / config.replicas),
    }
    for setup in SETUPS:
        m = per_setup[setup]
        backends, rate = feeds[setup]
        shared = setup == "replicas"
        table.add_row(
            LABELS.get(setup, f"{config.replicas} replicas over etcd, per replica"),
            f"{backends} x {rate:g}",
            f"{m['cpu_us_per_report']:.0f}",
            f"{m['reports']:.0f}",
            f"{m['etcd_writes_per_s']:.1f}" if shared else "",
            f"{m['etcd_cpu_share']:.0%}" if shared else "",
        )
    console = Console()
    console.print(table)
    ratio_of = {}
    for baseline in BASELINES:
        each = ratios(runs, baseline)
        ratio_of[baseline] = ratio = statistics.median(each)
        verdict = "met" if ratio <= GOAL else "not met"
        per_run = ", ".join(f"{r:.2f}" for r in each)
        console.print(
            f"replicas / {baseline}: {ratio:.2f}x (per run: {per_run}); "
            f"goal at most {GOAL:g}x: {verdict}"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(
        f"machine load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores"
    )
    if args.json:
        with open(args.json, "w") as out:
            body = {"config": config.__dict__, "runs": as_json(runs), "ratios": ratio_of}
            json.dump(body, out, indent=2)
    return 0
