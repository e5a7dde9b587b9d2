"""The lab's xds flow without sockets: the child imports no lookaside; records; report; plots."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from lookaside.bench.metrics import RequestRecord, summarize
from lookaside.bench.plots import POLICY_COLOURS, plot_all
from lookaside.bench.report import render_report
from lookaside.bench.results import (
    GRPC_ROUND_ROBIN,
    HETEROGENEOUS,
    SEED_SCENARIO,
    XDS,
    BenchResults,
    CaseConfig,
    CaseResult,
    RunResult,
    policy_key,
)
from lookaside.bench.xds_flow import FLOW_SCRIPT, flow_command, record_from
from tests.unit.test_bench_report import ENV, rows

GENERATED_STUBS = {"load_balancer_pb2", "load_balancer_pb2_grpc"}


def imported_roots(path: str) -> set[str]:
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.partition(".")[0])
    return roots


def test_the_stock_client_imports_only_the_stdlib_grpc_and_generated_stubs() -> None:
    roots = imported_roots(str(FLOW_SCRIPT)) - {"__future__"}
    assert roots - sys.stdlib_module_names == {"grpc", *GENERATED_STUBS}


def test_it_runs_with_its_own_folder_off_the_path() -> None:
    # The script sits among lookaside's modules; -P keeps them from being importable by name.
    command = flow_command(FLOW_SCRIPT.parent)
    assert command[1:3] == ["-P", str(FLOW_SCRIPT)]


def test_a_child_line_becomes_a_record_on_the_parents_clock() -> None:
    line = {"backend_id": "b2", "start": 0.5, "end": 0.55, "total_ms": 70.0, "error": ""}
    record = record_from(line, started=100.0)
    assert (record.start, record.end) == pytest.approx((100.5, 100.55))
    assert record.total_ms == 70.0  # from the scheduled arrival, as the child measured it
    assert record.compute_ms == pytest.approx(50.0) and record.lb_ms == 0.0
    assert record.ok and record.backend_id == "b2"
    failed = record_from(line | {"backend_id": "", "error": "DEADLINE_EXCEEDED"}, 0.0)
    assert not failed.ok and failed.error == "DEADLINE_EXCEEDED"


def case(policy: str, scenario: str, total_ms: float) -> CaseResult:
    config = CaseConfig(policy, 3, 10, scenario=scenario, work_ms=40.0, workers=2)
    recs = [
        RequestRecord(f"backend{i % 3 + 1}", i * 0.01, i * 0.01 + 0.05, 0.0, 50.0, total_ms, True)
        for i in range(30)
    ]
    ids = ["backend1", "backend2", "backend3"]
    return CaseResult(config, (RunResult(config, 1, summarize(recs, wall_s=1.0, backend_ids=ids)),))


def test_the_report_puts_xds_beside_both_baselines() -> None:
    cases = (
        case("round_robin", HETEROGENEOUS, 400.0),
        case(GRPC_ROUND_ROBIN, HETEROGENEOUS, 800.0),
        case(XDS, HETEROGENEOUS, 100.0),
    )
    report = render_report(BenchResults(ENV, cases))
    (xds,) = rows(report, XDS)
    assert xds[1:4] == ["100.0", "100.0", "100.0"]
    assert xds[-2:] == ["0.25 / 0.25 / 0.25", "0.12 / 0.12 / 0.12"]
    assert "`xds` is a stock grpcio client" in report


def test_the_seed_table_has_an_xds_row_without_seed_figures() -> None:
    report = render_report(BenchResults(ENV, (case("round_robin", SEED_SCENARIO, 500.0),
                                              case(XDS, SEED_SCENARIO, 520.0))))  # fmt: skip
    first = rows(report, XDS)[0]
    assert first[1] == "0.520" and first[2] == "—"  # ours, and no seed figure


def test_xds_comes_after_the_baseline_and_has_its_own_colour() -> None:
    assert policy_key(GRPC_ROUND_ROBIN) < policy_key(XDS) < policy_key("p2c")
    assert POLICY_COLOURS[XDS] not in {c for p, c in POLICY_COLOURS.items() if p != XDS}


def test_plots_show_xds_side_by_side(tmp_path: Path) -> None:
    cases = (case("round_robin", HETEROGENEOUS, 400.0), case(XDS, HETEROGENEOUS, 100.0))
    names = {p.name for p in plot_all(BenchResults(ENV, cases), tmp_path)}
    assert "usage-heterogeneous-3-xds-run1.png" in names
    assert "response_times-heterogeneous.png" in names
