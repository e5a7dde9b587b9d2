"""``lookaside bench``: the benchmark lab — every case on real processes, a report and plots."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from lookaside.bench.console import RichBenchProgress, summary_tables
from lookaside.bench.report import write_report
from lookaside.bench.results import SEED_SCENARIO, SWEEP, write_results_json
from lookaside.bench.runner import (
    SCENARIOS,
    BenchOptions,
    known_policies,
    run_bench,
    scenario_defaults,
)

DESCRIPTION = (
    "For every server count x policy x repeat: start a fresh LB with that policy and N "
    "backends as real processes, wait until all are registered, run the clients, stop "
    "everything. Writes results.json, report.md and PNG plots to --out. The defaults are "
    "the seed report's experiment (10 and 15 backends, 100 concurrent clients, 500 ms of work, "
    "4 workers) plus grpc_round_robin, gRPC's own client-side round robin without an LB. "
    "Flags left unset take the chosen scenario's defaults (shown as None below)."
)
_OPTIONS = BenchOptions()  # where the defaults of flags that no scenario changes live
QUICK: dict[str, Any] = {
    "servers": (3,),
    "clients": 24,
    "work_ms": 50.0,
    "workers": 2,
    "repeat": 1,
    "duration_s": 4.0,
}


def _servers(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected counts like 10,15, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("server counts must be at least 1")
    return counts


def _fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected shares like 0.3,0.7,0.9, got {text!r}"
        ) from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("load factors must be positive")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _defaults(field: str) -> str:
    """``seed: 10,15; heterogeneous: 6; ...``: what an unset flag means per scenario."""
    parts = []
    for scenario in SCENARIOS:
        value = getattr(scenario_defaults(scenario), field)
        if isinstance(value, tuple):
            value = ",".join(map(str, value)) or "-"
        elif isinstance(value, float):
            value = f"{value:.3g}"
        parts.append(f"{scenario}: {value}")
    return "; ".join(parts)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        default=SEED_SCENARIO,
        choices=SCENARIOS,
        help="seed = the original report's closed-loop burst; heterogeneous = slow backends, "
        "open-loop Poisson load; churn = backends SIGKILLed and replaced under load; "
        "chaos = backends and the LB SIGKILLed and restarted, clients with failover; "
        "stalls = equal backends, one at a time stopped (SIGSTOP) for --stall-ms now and "
        "then; sweep = the heterogeneous configuration at every --load-factors, p50/p99 "
        "against offered load; burst = 100 simultaneous requests on 10 idle backends, "
        "busiest / mean",
    )
    parser.add_argument(
        "--servers",
        type=_servers,
        default=None,
        help=f"backend counts, comma-separated ({_defaults('servers')})",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=None,
        help=f"concurrent clients; open loop: arrivals go to them in turn ({_defaults('clients')})",
    )
    parser.add_argument(
        "--requests-per-client",
        type=int,
        default=1,
        help="requests each client sends one after another (seed scenario)",
    )
    parser.add_argument(
        "--policies",
        type=_names,
        default=None,
        help=f"comma-separated, any of: {', '.join(known_policies())}",
    )
    parser.add_argument(
        "--work-ms",
        type=float,
        default=None,
        help=f"simulated work per task, ms ({_defaults('work_ms')})",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help=f"workers per backend ({_defaults('workers')})"
    )
    parser.add_argument(
        "--work-mode", choices=["sleep", "cpu"], default="sleep", help="how backends simulate work"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help=f"repeats of every case ({_defaults('repeat')})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help=f"deadline per request, seconds ({_defaults('timeout_s')})",
    )
    parser.add_argument("--service", default="compute", help="service the backends serve")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default: bench-results/<timestamp>/)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a small run for CI and smoke tests: 3 backends, 24 clients, "
        "50 ms work, 2 workers, 1 repeat (explicit flags still win)",
    )
    group = parser.add_argument_group(
        "open-loop scenarios (heterogeneous, churn, chaos, stalls, sweep)"
    )
    group.add_argument(
        "--slow-fraction",
        type=float,
        default=None,
        help=f"share of backends that are slow, the last ones ({_defaults('slow_fraction')})",
    )
    group.add_argument(
        "--slow-factor", type=float, default=4.0, help="slow backends' work time = --work-ms x this"
    )
    group.add_argument(
        "--load-factor",
        type=float,
        default=None,
        help="arrival rate as a share of the total capacity, the sum of workers / work "
        f"time ({_defaults('load_factor')})",
    )
    group.add_argument(
        "--duration",
        type=float,
        default=None,
        help=f"seconds of arrivals ({_defaults('duration_s')})",
    )
    group.add_argument(
        "--load-factors",
        type=_fractions,
        default=None,
        help=f"sweep: the loads to run, comma-separated ({_defaults('load_factors')})",
    )
    group.add_argument(
        "--stall-ms",
        type=float,
        default=_OPTIONS.stall_ms,
        help="stalls: how long a stopped backend stays stopped, ms",
    )
    group.add_argument(
        "--stall-interval",
        type=float,
        default=_OPTIONS.stall_interval_s,
        help="stalls: mean seconds between two stalls (each 0.5x..1.5x of it, one at a time)",
    )
    group.add_argument(
        "--seed",
        type=int,
        default=1,
        help="random seed of arrivals and kills (repeat k uses seed + k)",
    )
    group.add_argument(
        "--kill-interval", type=float, default=3.0, help="churn/chaos: seconds between kills"
    )
    group.add_argument(
        "--restart-delay",
        type=float,
        default=1.0,
        help="chaos: seconds a killed process stays down",
    )
    group.add_argument(
        "--ttl", type=float, default=None, help="the LB's --ttl (default: the LB's own)"
    )
    group.add_argument(
        "--report-interval",
        type=float,
        default=None,
        help="the LB's and backends' --report-interval (default: theirs)",
    )
    group.add_argument(
        "--lb-arg",
        action="append",
        default=[],
        metavar="FLAG=VALUE",
        help="pass a flag to every LB the lab starts, e.g. --lb-arg=--wrr-blackout=1 "
        "(repeatable; recorded in results.json)",
    )


# flag name -> BenchOptions field, for the flags whose default depends on the scenario
SCENARIO_FLAGS = {
    "servers": "servers",
    "clients": "clients",
    "policies": "policies",
    "work_ms": "work_ms",
    "workers": "workers",
    "repeat": "repeat",
    "timeout": "timeout_s",
    "slow_fraction": "slow_fraction",
    "load_factor": "load_factor",
    "duration": "duration_s",
    "load_factors": "load_factors",
}


def options_from(args: argparse.Namespace) -> BenchOptions:
    """Scenario defaults, then ``--quick``'s, then the flags given explicitly."""
    values: dict[str, Any] = asdict(scenario_defaults(args.scenario))
    if args.quick:
        values |= QUICK
    values |= {
        field: getattr(args, flag)
        for flag, field in SCENARIO_FLAGS.items()
        if getattr(args, flag) is not None
    }
    return BenchOptions(
        scenario=args.scenario,
        requests_per_client=args.requests_per_client,
        work_mode=args.work_mode,
        service=args.service,
        slow_factor=args.slow_factor,
        seed=args.seed,
        kill_interval_s=args.kill_interval,
        restart_delay_s=args.restart_delay,
        stall_ms=args.stall_ms,
        stall_interval_s=args.stall_interval,
        ttl=args.ttl,
        report_interval=args.report_interval,
        lb_args=tuple(args.lb_arg),
        **values,
    )


def default_out_dir(now: datetime | None = None) -> Path:
    return Path("bench-results") / (now or datetime.now()).strftime("%Y%m%d-%H%M%S")


def run(args: argparse.Namespace) -> int:
    from lookaside.bench.plots import plot_all  # matplotlib: only when a report is made

    options = options_from(args)
    out_dir: Path = args.out or default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    console = Console()
    loads = len(options.load_factors) if options.scenario == SWEEP else 1
    cases = loads * len(options.servers) * len(options.policies) * options.repeat
    console.print(
        f"[bold]lookaside bench[/] · scenario {options.scenario} · {cases} case run(s) · "
        f"output {out_dir}",
        soft_wrap=True,  # a path is never broken across lines: it is pasted as printed
    )
    with RichBenchProgress(cases, console) as progress:
        results = run_bench(options, out_dir, progress)
    results_path = write_results_json(results, out_dir / "results.json")
    plots = plot_all(results, out_dir)
    report_path = write_report(results, out_dir / "report.md", plots)
    for table in summary_tables(results):
        console.print(table)
    console.print(f"results: {results_path}", soft_wrap=True)
    console.print(f"plots:   {len(plots)} PNG file(s) in {out_dir}", soft_wrap=True)
    console.print(f"[bold]report: {report_path}[/]", soft_wrap=True)
    return 0
