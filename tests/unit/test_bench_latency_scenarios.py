"""The stalls, sweep and burst scenarios: planning, report, plot and summary, without sockets."""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import time
from pathlib import Path

import pytest
from rich.console import Console

from lookaside.bench.console import summary_tables
from lookaside.bench.fleet import Fleet
from lookaside.bench.metrics import RequestRecord, summarize
from lookaside.bench.plots import plot_all
from lookaside.bench.report import render_report
from lookaside.bench.results import (
    BURST,
    GRPC_ROUND_ROBIN,
    STALLS,
    SWEEP,
    BenchResults,
    CaseConfig,
    CaseResult,
    Environment,
    RunResult,
)
from lookaside.bench.runner import BenchOptions, plan
from lookaside.bench.stalls import StallLog, stall_backends
from lookaside.commands import bench as bench_command
from tests.unit.test_bench_plots import assert_png

ENV = Environment(2, 2, "Linux-test", "3.11.2", "1.85.3", "7.36.2", "2025-01-01T00:00:00+00:00")


def parse(*argv: str) -> BenchOptions:
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    return bench_command.options_from(parser.parse_args(argv))


def test_sweep_plans_every_load_for_every_policy() -> None:
    options = parse("--scenario", "sweep", "--load-factors", "0.3,0.9", "--policies",
                    "prequal,grpc_round_robin")  # fmt: skip
    cases = plan(options)
    assert [(c.policy, c.params["load_factor"]) for c in cases] == [
        ("prequal", 0.3), (GRPC_ROUND_ROBIN, 0.3), ("prequal", 0.9), (GRPC_ROUND_ROBIN, 0.9),
    ]  # fmt: skip
    # The heterogeneous configuration: 225 req/s of capacity.
    assert cases[2].params["rate_rps"] == pytest.approx(0.9 * 225)
    assert "load_factors" in options.to_dict() and "load_factor" not in options.to_dict()


def test_sweep_defaults_span_30_to_95_percent_with_the_baseline() -> None:
    options = parse("--scenario", "sweep")
    assert options.load_factors[0] == 0.3 and options.load_factors[-1] == 0.95
    assert {"prequal", "peak_ewma", "least_load", GRPC_ROUND_ROBIN} <= set(options.policies)


def test_stalls_and_burst_defaults() -> None:
    stalls = parse("--scenario", "stalls", "--stall-ms", "200")
    (case, *_) = plan(stalls)
    assert case.params["stall_ms"] == 200 and case.params["slow_backends"] == "none"
    burst = parse("--scenario", "burst")
    assert (burst.servers, burst.clients, burst.requests_per_client) == ((10,), 100, 1)
    with pytest.raises(ValueError):
        BenchOptions(scenario=STALLS, stall_ms=0)


def _case(scenario: str, policy: str, load: float, usage: list[int]) -> CaseResult:
    config = CaseConfig(policy, len(usage), 100, scenario=scenario, params={"load_factor": load})
    ids = [f"backend{i}" for i in range(1, len(usage) + 1)]
    records = [
        RequestRecord(backend, 0.0, 0.1, 1.0, 50.0 * load * (n + 1), 50.0 * load * (n + 1), True)
        for backend, count in zip(ids, usage, strict=True)
        for n in range(count)
    ]
    runs = tuple(
        RunResult(config, r, summarize(records, wall_s=1.0, backend_ids=ids), stalls=3)
        for r in (1, 2, 3)
    )
    return CaseResult(config, runs)


def test_busiest_over_mean_in_report_and_summary() -> None:
    results = BenchResults(ENV, (
        _case(BURST, "prequal", 0.0, [10] * 10),
        _case(BURST, "p2c", 0.0, [13, 7, 10, 10, 10, 10, 10, 10, 10, 10]),
    ))  # fmt: skip
    report = render_report(results)
    assert "## Burst" in report
    assert "| prequal | " in report and "| 1.00 |" in report and "| 1.30 |" in report
    console = Console(record=True, width=200)
    for table in summary_tables(results):
        console.print(table)
    text = console.export_text()
    assert "busiest/mean" in text and "1.30" in text


def test_sweep_report_and_plot(tmp_path: Path) -> None:
    cases = tuple(
        _case(SWEEP, policy, load, [5, 5, 5])
        for load in (0.3, 0.7, 0.9)
        for policy in ("prequal", GRPC_ROUND_ROBIN)
    )
    results = BenchResults(ENV, cases)
    report = render_report(results)
    assert "## Load sweep" in report
    assert report.index("| 30% | prequal") < report.index("| 90% | prequal")
    paths = plot_all(results, tmp_path)
    assert paths == [tmp_path / "sweep.png"]
    assert_png(paths[0])


def test_stalls_section_and_stall_count() -> None:
    case = _case(STALLS, "prequal", 0.4, [5, 5])
    assert case.runs[0].figures()["stalls"] == 3.0
    assert "## Stalls" in render_report(BenchResults(ENV, (case,)))


class _FakeProcess:
    def __init__(self) -> None:
        self.signals: list[signal.Signals] = []

    def signal(self, sig: signal.Signals) -> None:
        self.signals.append(sig)


def test_stall_task_stops_and_continues_one_backend_at_a_time(tmp_path: Path) -> None:
    fleet = Fleet(tmp_path)
    processes = {name: _FakeProcess() for name in ("backend1", "backend2")}
    fleet.backends = processes  # type: ignore[assignment]
    log = StallLog()
    until = time.perf_counter() + 0.3
    asyncio.run(stall_backends(fleet, 20, 0.05, random.Random(1), until, log))
    assert log.started, "no stall happened"
    for process in processes.values():
        # Every SIGSTOP is followed by its SIGCONT: none is left stopped.
        assert process.signals == [signal.SIGSTOP, signal.SIGCONT] * (len(process.signals) // 2)
