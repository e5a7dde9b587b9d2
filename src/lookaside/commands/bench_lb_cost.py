"""``lookaside bench-lb-cost``: one LB's cost per report, pick and watch push, with the goals."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from dataclasses import asdict

from rich.console import Console
from rich.table import Table

from lookaside.bench.lb_cost import (
    BASELINE_REF,
    GOALS,
    CostConfig,
    as_json,
    medians,
    met,
    run_lb_cost_bench,
)
from lookaside.bench.lb_fleet import cpu_split

_DEFAULTS = CostConfig()

DESCRIPTION = (
    "Measure what one LB process pays as the fleet grows, the LB a real separate process "
    "pinned to one core and the fleet simulated on the other cores (raw RegisterBackend + "
    "StreamLoad streams in --generators processes): CPU per streamed load report at 50, "
    "2,000 and 10,000 backends (and the ratios), GetBackend p50/p99 while every backend of "
    "the 2,000 reports once a second, and WatchBackends with many delta-accepting "
    "subscribers (the LB's CPU share and bytes per push). Prints the medians of --repeat "
    "runs with the goal of each figure and whether it is met; --baseline REV also runs the "
    "LB of a git revision, alternately."
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
        "--huge-fleet",
        type=int,
        default=d.huge_fleet,
        help="backends, largest case (0 = skip it)",
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
        "--generators",
        type=int,
        default=d.generators,
        help="processes simulating the fleet",
    )
    parser.add_argument(
        "--baseline",
        default=d.baseline or "none",
        help=f"git revision of a 'before' LB to run alternately (e.g. {BASELINE_REF}; "
        "'none' = measure only the current code)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every run's figures as JSON")


def rows(config: CostConfig) -> list[tuple[str, str, str]]:
    """(label, figure, format) of every row, named by the fleet sizes measured."""
    small, large, huge = config.small_fleet, config.large_fleet, config.huge_fleet
    found = [
        (f"CPU per streamed report, {small:,} backends (µs)", "cpu_us_per_report_small", "{:.0f}"),
        (f"CPU per streamed report, {large:,} backends (µs)", "cpu_us_per_report_large", "{:.0f}"),
    ]
    if huge:
        found.append(
            (f"CPU per streamed report, {huge:,} backends (µs)", "cpu_us_per_report_huge", "{:.0f}")
        )
    found.append((f"  ratio {large:,} / {small:,}", "cpu_ratio", "{:.2f}x"))
    if huge:
        found.append((f"  ratio {huge:,} / {small:,}", "cpu_ratio_huge", "{:.2f}x"))
    ingest = f"while {large:,} backends report at 1 Hz"
    found += [
        (f"GetBackend p50 {ingest} (ms)", "getbackend_p50_ms", "{:.2f}"),
        (f"GetBackend p99 {ingest} (ms)", "getbackend_p99_ms", "{:.2f}"),
        ("  reports/s the LB was sent meanwhile", "getbackend_reports_per_s", "{:,.0f}"),
        ("  LB CPU meanwhile (share of one core)", "getbackend_lb_cpu_share", "{:.0%}"),
        (
            f"WatchBackends, {config.watch_fleet:,} backends x 1 Hz, {config.watchers} "
            "subscribers: LB CPU (share of one core)",
            "watch_cpu_share",
            "{:.0%}",
        ),
        ("  bytes per push", "watch_bytes_per_push", "{:,.0f}"),
        ("  pushes per second per subscriber", "watch_pushes_per_s", "{:.1f}"),
    ]
    return found


#: The row measured by its own command (it needs etcd and three LB processes).
REPLICA_ROW = (
    "3 replicas + etcd: CPU per report per replica vs a lone in-memory LB",
    "at most 1.5x",
    "lookaside bench-replica-cost",
)


def _verdict(key: str, value: float) -> str:
    verdict = met(key, value)
    if verdict is None:
        return ""
    return "[green]met[/green]" if verdict else "[red]not met[/red]"


def run(args: argparse.Namespace) -> int:
    config = CostConfig(
        small_fleet=args.small_fleet,
        large_fleet=args.large_fleet,
        huge_fleet=args.huge_fleet,
        report_rate=args.report_rate,
        getbackend_rate=args.getbackend_rate,
        watch_fleet=args.watch_fleet,
        watchers=args.watchers,
        seconds=args.seconds,
        repeat=args.repeat,
        generators=args.generators,
        baseline="" if args.baseline in ("", "none") else args.baseline,
    )
    runs = asyncio.run(run_lb_cost_bench(config))
    builds = ["before", "after"] if config.baseline else ["after"]
    per_build = {build: medians(runs, build) for build in builds}
    lb_cpus, load_cpus = cpu_split()
    pinning = (
        f"LB pinned to core {','.join(map(str, sorted(lb_cpus)))}, load on "
        f"{','.join(map(str, sorted(load_cpus)))}"
        if lb_cpus != load_cpus
        else "one core: nothing pinned apart"
    )
    title = f"one LB's costs — medians of {config.repeat} runs — {pinning}"
    table = Table(title=title)
    table.add_column("figure")
    for build in builds:
        label = f"before ({config.baseline})" if build == "before" else "measured"
        table.add_column(label, justify="right")
    table.add_column("goal")
    table.add_column("")
    for label, key, fmt in rows(config):
        cells = [fmt.format(per_build[b][key]) for b in builds]
        goal = GOALS.get(key)
        table.add_row(
            label, *cells, goal[1] if goal else "", _verdict(key, per_build["after"][key])
        )
    replicas, replica_goal, command = REPLICA_ROW
    table.add_row(replicas, *([f"see {command}"] + [""] * (len(builds) - 1)), replica_goal, "")
    console = Console(width=max(Console().width, 132))  # one line per row, even in a pipe
    console.print(table)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(
        f"machine load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores"
    )
    errors = sum(r.getbackend_errors for r in runs if r.build == "after")
    if errors:
        console.print(f"[red]{errors} GetBackend calls failed against the current LB[/red]")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"config": asdict(config), "runs": as_json(runs), "medians": per_build},
                out,
                indent=2,
            )
    return 0 if errors == 0 else 1
