"""report.md and results.json: the seed's figures and the ideal sit beside ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from lookaside.bench.churn import ChurnEvent, churn_figures
from lookaside.bench.metrics import RequestRecord, summarize
from lookaside.bench.report import render_report, write_report
from lookaside.bench.results import (
    CHAOS,
    CHURN,
    GRPC_ROUND_ROBIN,
    HETEROGENEOUS,
    BenchResults,
    CaseConfig,
    CaseResult,
    Environment,
    RunResult,
    write_results_json,
)
from lookaside.bench.seed_figures import SEED_FIGURES, seed_figures

POLICIES = ("pick_first", "round_robin", "least_load", GRPC_ROUND_ROBIN)
WALLS = (3.0, 2.5, 3.5)  # per repeat: efficiencies 1.5/3.0 = 50 %, 60 %, 42.9 %
ENV = Environment(
    cpu_count=2,
    usable_cpus=2,
    platform="Linux-test",
    python="3.11.2",
    grpcio="1.85.3",
    protobuf="7.36.2",
    timestamp="2025-01-01T00:00:00+00:00",
)


def records(
    policy: str, servers: int, count: int = 100, base_ms: float = 500.0, ok: bool = True
) -> list[RequestRecord]:
    out = []
    for i in range(count):
        backend = "backend1" if policy == "pick_first" else f"backend{i % servers + 1}"
        total = base_ms + 2 * i
        out.append(RequestRecord(backend, i * 0.01, i * 0.01 + total / 1000, 2.0, total - 2.0,
                                 total, ok, "" if ok else "UNAVAILABLE"))  # fmt: skip
    return out


def seed_case(policy: str, servers: int, walls: tuple[float, ...] = WALLS) -> CaseResult:
    config = CaseConfig(policy=policy, servers=servers, clients=100)
    ids = [f"backend{i}" for i in range(1, servers + 1)]
    runs = tuple(
        RunResult(config, n, summarize(records(policy, servers), wall_s=wall, backend_ids=ids))
        for n, wall in enumerate(walls, start=1)
    )
    return CaseResult(config, runs)


def seed_results(walls: tuple[float, ...] = WALLS) -> BenchResults:
    cases = tuple(seed_case(p, n, walls) for n in (10, 15) for p in POLICIES)
    return BenchResults(ENV, cases, {"servers": "10,15", "repeat": len(walls)})


def rows(report: str, policy: str) -> list[list[str]]:
    """Every table row of ``policy``, split into cells, in report order."""
    prefix = f"| {policy} |"
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in report.splitlines()
        if line.startswith(prefix)
    ]


class TestSeedTable:
    def test_seed_figures_sit_beside_ours(self) -> None:
        report = render_report(seed_results())
        response_10, throughput_10, response_15, throughput_15 = rows(report, "pick_first")
        # policy | avg | seed | ideal | max | seed | ideal | min | seed | ideal | p50 | p95 | p99
        assert response_10[2] == "6.701"
        assert response_10[5] == "12.780"
        assert response_10[8] == "0.526"
        assert response_15[2] == "7.013"
        assert response_15[5] == "15.544"
        assert throughput_10[2] == "7.49"
        assert throughput_15[2] == "6.14"
        assert rows(report, "least_load")[3][2] == "38.61"

    def test_ideal_for_the_configuration(self) -> None:
        report = render_report(seed_results())
        assert "Ideal: wall 1.500 s, throughput 66.67 req/s" in report
        assert "Ideal: wall 1.000 s, throughput 100.00 req/s" in report
        response_10, throughput_10, response_15, _ = rows(report, "round_robin")
        assert (response_10[3], response_10[6], response_10[9]) == ("0.900", "1.500", "0.500")
        assert response_15[3] == "0.700"
        assert throughput_10[3] == "66.67"

    def test_medians_spread_and_efficiency(self) -> None:
        report = render_report(seed_results())
        _, throughput_10, _, throughput_15 = rows(report, "round_robin")
        # 100 completed over walls 3.0 / 2.5 / 3.5 s.
        assert throughput_10[1] == "33.33 [28.57..40.00]"
        assert throughput_10[4] == "3.000 [2.500..3.500]"
        # Ideal walls 1.5 s (10 backends) and 1.0 s (15) over the same walls.
        assert throughput_10[5] == "50 [43..60] %"
        assert throughput_15[5] == "33 [29..40] %"
        assert throughput_10[6] == "0"  # errors, identical in every repeat
        assert "Figures are medians with their [min..max] range." in report

    def test_response_percentiles_in_seconds(self) -> None:
        response_10 = rows(render_report(seed_results()), "round_robin")[0]
        # Totals 500, 502, ..., 698 ms, identical in every repeat; rank h = 99q/100.
        assert response_10[1] == "0.599"  # avg
        assert response_10[4] == "0.698"  # max
        assert response_10[7] == "0.500"  # min
        # p50: h=49.5 -> 599; p95: h=94.05 -> 688.1; p99: h=98.01 -> 696.02
        assert response_10[10:] == ["0.599", "0.688", "0.696"]

    def test_single_repeat_has_no_range(self) -> None:
        report = render_report(seed_results(walls=(2.0,)))
        throughput_10 = rows(report, "round_robin")[1]
        assert throughput_10[1] == "50.00"
        assert throughput_10[5] == "75 %"
        assert "[" not in throughput_10[1]
        assert "Figures are medians" not in report

    def test_baseline_row_has_no_seed_figures(self) -> None:
        response_10, throughput_10, _, _ = rows(render_report(seed_results()), GRPC_ROUND_ROBIN)
        assert (response_10[2], response_10[5], response_10[8]) == ("—", "—", "—")
        assert response_10[3] == "0.900"  # but it does have the ideal
        assert throughput_10[2] == "—"

    def test_usage_spread_ours_and_seed(self) -> None:
        report = render_report(seed_results())
        pf_10 = rows(report, "pick_first")[1]
        assert pf_10[-2] == "0..100 (1/10 used)"  # idle backends are listed too
        assert pf_10[-1] == "0..100 (1/10 used)"  # seed: all 100 on backend6
        rr_10, rr_15 = rows(report, "round_robin")[1], rows(report, "round_robin")[3]
        assert rr_10[-2] == "10..10 (10/10 used)"
        assert rr_10[-1] == "10..10 (10/10 used)"
        assert rr_15[-1].startswith("roughly even")  # the seed only described it
        assert rows(report, "least_load")[1][-1] == "6..13 (10/10 used)"

    def test_usage_details_list_backends_in_natural_order(self) -> None:
        report = render_report(seed_results())
        line = next(x for x in report.splitlines() if x.startswith("- round_robin #1: backend1 "))
        assert line.index("backend2 10") < line.index("backend10 10")

    def test_machine_and_versions_are_stated(self) -> None:
        report = render_report(seed_results())
        assert "2 CPUs (2 usable)" in report
        assert "grpcio 1.85.3" in report and "protobuf 7.36.2" in report

    def test_write_report(self, tmp_path: Path) -> None:
        path = write_report(seed_results(), tmp_path / "out" / "report.md")
        assert path.read_text(encoding="utf-8") == render_report(seed_results())


def tail_case(policy: str, base_ms: float) -> CaseResult:
    params = {"slow_fraction": 0.333, "slow_factor": 4, "load": 0.7, "duration_s": 5.0}
    config = CaseConfig(policy, 6, 0, scenario=HETEROGENEOUS, params=params)
    flat = [RequestRecord("backend1", 0.0, 0.1, 1.0, base_ms - 1, base_ms, True)] * 50
    return CaseResult(config, (RunResult(config, 1, summarize(flat, wall_s=5.0)),))


class TestScenarios:
    def test_heterogeneous_ratios_to_both_baselines(self) -> None:
        cases = (
            tail_case("round_robin", 200.0),
            tail_case("least_load", 100.0),
            tail_case(GRPC_ROUND_ROBIN, 400.0),
        )
        report = render_report(BenchResults(ENV, cases))
        assert "## Heterogeneous backends" in report
        assert "Parameters: slow_fraction=0.333, slow_factor=4, load=0.7, duration_s=5.0." in report
        (least,) = rows(report, "least_load")
        assert least[1:4] == ["100.0", "100.0", "100.0"]
        assert least[-2] == "0.50 / 0.50 / 0.50"  # vs round_robin
        assert least[-1] == "0.25 / 0.25 / 0.25"  # vs grpc_round_robin
        assert rows(report, "round_robin")[0][-2] == "1.00 / 1.00 / 1.00"
        assert "## The seed's experiment" not in report

    def test_churn_section(self) -> None:
        config = CaseConfig("round_robin", 10, 20, scenario=CHURN, params={"kill_every_s": 2})
        recs = records("round_robin", 10, count=20)
        recs.append(RequestRecord("backend3", 1.5, 1.6, 0.0, 0.0, 100.0, False, "UNAVAILABLE"))
        events = [ChurnEvent("kill", "backend3", 0.3), ChurnEvent("start", "backend11", 0.5)]
        run = RunResult(config, 1, summarize(recs, wall_s=2.0), churn_figures(recs, events))
        report = render_report(BenchResults(ENV, (CaseResult(config, (run,)),)))
        assert "## Churn" in report
        (row,) = rows(report, "round_robin")
        # policy | requests | errors | stale window | stale picks | first traffic | starved | p99
        # backend3's two round-robin picks came before the kill; only the one at 1.5 s is stale.
        assert row[1:7] == ["21", "1", "1.200", "1", "never", "1"]

    def test_chaos_section_counts_sent_failed_and_retried(self) -> None:
        config = CaseConfig("least_load", 4, 50, scenario=CHAOS, params={"duration_s": 60})
        recs = [
            RequestRecord("backend1", 0.0, 0.1, 1.0, 20.0, 21.0, True, "", retries=1),
            RequestRecord("backend2", 0.0, 0.1, 1.0, 30.0, 31.0, True),
            RequestRecord("", 0.0, 0.1, 1.0, 0.0, 99.0, False, "UNAVAILABLE", retries=2),
        ]
        run = RunResult(config, 1, summarize(recs, wall_s=1.0))
        report = render_report(BenchResults(ENV, (CaseResult(config, (run,)),)))
        assert "## Chaos" in report and "Parameters: duration_s=60." in report
        (row,) = rows(report, "least_load")
        # policy | sent | succeeded | failed | retried | p50 | p95 | p99 | max
        assert row[1:6] == ["3", "2", "1", "3", "26.0"]
        assert "## Scenario: chaos" not in report


class TestResultsJson:
    def test_every_run_config_and_environment(self, tmp_path: Path) -> None:
        path = write_results_json(seed_results(), tmp_path / "results.json")
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["environment"]["cpu_count"] == 2
        assert data["options"] == {"servers": "10,15", "repeat": 3}
        assert len(data["cases"]) == 8
        first = data["cases"][0]
        assert first["config"]["policy"] == "pick_first"
        assert first["config"]["requests"] == 100
        assert first["ideal"]["wall_s"] == pytest.approx(1.5)
        assert [run["summary"]["wall_s"] for run in first["runs"]] == list(WALLS)
        assert first["runs"][0]["efficiency"] == pytest.approx(0.5)
        assert first["runs"][0]["summary"]["backend_usage"]["backend1"] == 100
        assert first["aggregate"]["throughput_rps"]["median"] == pytest.approx(100 / 3)

    def test_missing_figures_are_null_not_nan(self, tmp_path: Path) -> None:
        config = CaseConfig("round_robin", 2, 4)
        failed = summarize(records("round_robin", 2, count=4, ok=False), wall_s=1.0)
        results = BenchResults(ENV, (CaseResult(config, (RunResult(config, 1, failed),)),))
        text = write_results_json(results, tmp_path / "r.json").read_text(encoding="utf-8")
        assert "NaN" not in text
        run = json.loads(text)["cases"][0]["runs"][0]["summary"]
        assert run["response_ms"]["avg_ms"] is None
        assert run["errors"] == 4 and run["error_kinds"] == {"UNAVAILABLE": 4}

    def test_scenario_parameters_are_recorded(self, tmp_path: Path) -> None:
        results = BenchResults(ENV, (tail_case("least_load", 100.0),))
        data = json.loads(write_results_json(results, tmp_path / "r.json").read_text("utf-8"))
        case = data["cases"][0]
        assert case["config"]["scenario"] == HETEROGENEOUS
        assert case["config"]["params"]["slow_factor"] == 4
        assert case["ideal"] is None  # the closed-loop ideal does not describe open loop

    def test_environment_capture(self) -> None:
        env = Environment.capture(now=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
        assert env.timestamp == "2025-03-01T12:00:00+00:00"
        assert env.grpcio == metadata.version("grpcio")
        assert env.protobuf == metadata.version("protobuf")
        assert env.cpu_count >= env.usable_cpus >= 1


class TestSeedFigures:
    def test_six_cases_with_full_usage_summing_to_100(self) -> None:
        assert len(SEED_FIGURES) == 6
        for figures in SEED_FIGURES:
            if figures.usage is not None:
                assert sum(figures.usage.values()) == 100

    def test_lookup(self) -> None:
        rr = seed_figures(10, "round_robin")
        assert rr is not None and rr.throughput_rps == 36.16
        assert seed_figures(15, "round_robin") is not None
        assert seed_figures(10, GRPC_ROUND_ROBIN) is None
        assert seed_figures(12, "round_robin") is None
