"""``lookaside bench-lb-cost``: one LB's cost per report, pick and watch push, before/after."""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from rich.console import Console
from rich.table import Table

from lookaside.bench.lb_cost import CostConfig, as_json, medians, run_lb_cost_bench

_DEFAULTS = CostConfig()

DESCRIPTION = (
    "Measure what one LB process pays as the fleet grows, with the fleet simulated in this "
    "process (raw RegisterBackend + StreamLoad streams) and the LB a real separate process: "
    "CPU per streamed load report at a small and a large fleet (and their ratio), GetBackend "
    "p50/p99 while every backend of the large fleet reports once a second, and WatchBackends "
    "with many delta-accepting subscribers (the LB's CPU share and bytes per push). Runs the "
    "current LB ('after') and the LB of a git revision ('before', --baseline) alternately, "
    "--repeat times, and prints the medians side by side."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = _DEFAULTS
    parser.add_argument(
        "--small-fleet", type=int, default=d.small_fleet, help="backends, small case"
    )
    parser.add_argument(
        "--large-fleet", type=int, default=d.large_fleet, help="backends, large case"
    )
    parser.add_argument(
        "--report-rate",
        type=float,
        default=d.report_rate,
        help="total reports per second in the CPU-per-report case (same at both sizes)",
    )
    parser.add_argument(
        "--getbackend-rate",
        type=float,
        default=d.getbackend_rate,
        help="GetBackend calls per second",
    )
    parser.add_argument(
        "--watch-fleet",
        type=int,
        default=d.watch_fleet,
        help="backends (1 report/s each), watch case",
    )
    parser.add_argument(
        "--watchers", type=int, default=d.watchers, help="WatchBackends subscribers"
    )
    parser.add_argument("--seconds", type=float, default=d.seconds, help="measured window per case")
    parser.add_argument(
        "--repeat", type=int, default=d.repeat, help="runs of each build, alternating"
    )
    parser.add_argument(
        "--baseline",
        default=d.baseline,
        help="git revision of the 'before' LB ('none' = measure only the current code)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures as JSON")


ROWS = (
    ("CPU per streamed report, small fleet (µs)", "cpu_us_per_report_small", "{:.0f}"),
    ("CPU per streamed report, large fleet (µs)", "cpu_us_per_report_large", "{:.0f}"),
    ("  ratio large / small", "cpu_ratio", "{:.2f}x"),
    ("GetBackend p50 while the large fleet reports at 1 Hz (ms)", "getbackend_p50_ms", "{:.2f}"),
    ("GetBackend p99 while the large fleet reports at 1 Hz (ms)", "getbackend_p99_ms", "{:.2f}"),
    ("  LB CPU meanwhile (share of one core)", "getbackend_lb_cpu_share", "{:.0%}"),
    ("WatchBackends: LB CPU (share of one core)", "watch_cpu_share", "{:.0%}"),
    ("WatchBackends: bytes per push", "watch_bytes_per_push", "{:,.0f}"),
    ("WatchBackends: pushes per second per subscriber", "watch_pushes_per_s", "{:.1f}"),
)


def run(args: argparse.Namespace) -> int:
    config = CostConfig(
        small_fleet=args.small_fleet,
        large_fleet=args.large_fleet,
        report_rate=args.report_rate,
        getbackend_rate=args.getbackend_rate,
        watch_fleet=args.watch_fleet,
        watchers=args.watchers,
        seconds=args.seconds,
        repeat=args.repeat,
        baseline="" if args.baseline == "none" else args.baseline,
    )
    runs = asyncio.run(run_lb_cost_bench(config))
    builds = ["before", "after"] if config.baseline else ["after"]
    per_build = {build: medians(runs, build) for build in builds}
    title = (
        f"one LB's costs — small fleet {config.small_fleet}, large {config.large_fleet}, "
        f"watch {config.watch_fleet} backends x {config.watchers} subscribers — "
        f"medians of {config.repeat} runs"
    )
    table = Table(title=title)
    table.add_column("figure")
    for build in builds:
        label = f"before ({config.baseline})" if build == "before" else "after"
        table.add_column(label, justify="right")
    if config.baseline:
        table.add_column("after / before", justify="right")
    for label, key, fmt in ROWS:
        cells = [fmt.format(per_build[b][key]) for b in builds]
        if config.baseline:
            before = per_build["before"][key]
            cells.append(f"{per_build['after'][key] / before:.2f}" if before else "")
        table.add_row(label, *cells)
    Console().print(table)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    Console().print(
        f"machine load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores"
    )
    errors = sum(r.getbackend_errors for r in runs if r.build == "after")
    if errors:
        Console().print(f"[red]{errors} GetBackend calls failed against the current LB[/red]")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"config": config.__dict__, "runs": as_json(runs), "medians": per_build},
                out,
                indent=2,
            )
    return 0 if errors == 0 else 1
