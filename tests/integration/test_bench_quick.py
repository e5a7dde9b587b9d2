"""``lookaside bench`` end to end: real processes, and the files a user reads afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lookaside.procs import lookaside_command

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bench(out: Path, *flags: str, timeout: float = 120) -> dict[str, Any]:
    done = subprocess.run(
        [*lookaside_command(), "bench", "--out", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"report: {out / 'report.md'}" in done.stdout
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def cases_by_policy(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {case["config"]["policy"]: case for case in data["cases"]}


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick"
    return out, bench(out, "--quick")


def test_results_json_holds_machine_options_and_every_case(
    quick: tuple[Path, dict[str, Any]],
) -> None:
    _, data = quick
    env = data["environment"]
    assert env["cpu_count"] >= 1 and env["python"] and env["grpcio"] != "not installed"
    assert "commit" in env  # the git HEAD the figures came from ("" outside a checkout)
    assert data["options"]["scenario"] == "seed"
    assert data["options"]["servers"] == [3] and data["options"]["clients"] == 24
    cases = cases_by_policy(data)
    assert set(cases) == {"pick_first", "round_robin", "least_load", "grpc_round_robin", "xds"}
    for case in cases.values():
        config = case["config"]
        assert (config["servers"], config["clients"], config["work_ms"], config["workers"]) == (
            3, 24, 50.0, 2,
        )  # fmt: skip
        assert case["ideal"]["wall_s"] == pytest.approx(0.2)
        (run,) = case["runs"]
        summary = run["summary"]
        assert summary["requests"] == summary["completed"] == 24
        assert summary["errors"] == 0
        assert sum(summary["backend_usage"].values()) == 24
        assert 0 < run["efficiency"] <= 1.0
        for figure in ("avg_ms", "min_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms"):
            assert summary["response_ms"][figure] >= 50.0  # never faster than the work
        assert case["aggregate"]["throughput_rps"]["median"] > 0


def test_round_robin_spreads_requests_exactly_evenly(quick: tuple[Path, dict[str, Any]]) -> None:
    _, data = quick
    usage = cases_by_policy(data)["round_robin"]["runs"][0]["summary"]["backend_usage"]
    assert usage == {"backend1": 8, "backend2": 8, "backend3": 8}
    first = cases_by_policy(data)["pick_first"]["runs"][0]["summary"]["backend_usage"]
    assert sorted(first.values()) == [0, 0, 24]


def test_report_has_the_seed_table_ideal_and_usage(quick: tuple[Path, dict[str, Any]]) -> None:
    out, _ = quick
    report = (out / "report.md").read_text()
    for needle in (
        "# lookaside benchmark report",
        "Machine: ",
        "## The seed's experiment",
        "### 3 backends · 24 clients",
        "Ideal: wall 0.200 s",
        "| grpc_round_robin |",
        "efficiency",
        "round_robin #1: backend1 8, backend2 8, backend3 8",
    ):
        assert needle in report


def test_plots_are_png_files(quick: tuple[Path, dict[str, Any]]) -> None:
    out, _ = quick
    names = {p.name for p in out.glob("*.png")}
    assert {"response_times-seed.png", "throughput-seed.png"} <= names
    assert {f"usage-seed-3-{p}-run1.png" for p in ("pick_first", "round_robin", "xds")} <= names
    for name in names:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_heterogeneous_scenario_records_its_parameters(tmp_path: Path) -> None:
    data = bench(
        tmp_path,
        "--scenario", "heterogeneous", "--quick", "--servers", "3", "--duration", "2",
        "--policies", "round_robin,grpc_round_robin,xds", "--slow-fraction", "0.34",
    )  # fmt: skip
    cases = cases_by_policy(data)
    params = cases["round_robin"]["config"]["params"]
    # 2 fast backends (2 workers / 50 ms) + 1 slow one (2 workers / 200 ms) = 90 req/s.
    assert params["slow_backends"] == "backend3"
    assert params["capacity_rps"] == pytest.approx(90.0)
    assert params["rate_rps"] == pytest.approx(63.0)
    assert params["duration_s"] == 2.0 and params["seed"] == 1
    for case in cases.values():
        summary = case["runs"][0]["summary"]
        assert summary["errors"] == 0 and summary["requests"] > 50
    # The stock xDS client (its own process, no lookaside import) was served by every
    # backend it learnt of over ADS, and its requests were timed like the others'.
    xds = cases["xds"]["runs"][0]["summary"]
    assert set(xds["backend_usage"]) == {"backend1", "backend2", "backend3"}
    assert all(count > 0 for count in xds["backend_usage"].values())
    assert xds["response_ms"]["min_ms"] >= 50.0
    report = (tmp_path / "report.md").read_text()
    assert "## Heterogeneous backends" in report
    assert "| xds |" in report
    assert "slow_backends=backend3" in report


def test_churn_scenario_reports_stale_and_first_traffic(tmp_path: Path) -> None:
    data = bench(
        tmp_path,
        "--scenario", "churn", "--quick", "--duration", "5", "--kill-interval", "1.2",
        "--policies", "round_robin", "--ttl", "1.5", "--report-interval", "0.3",
    )  # fmt: skip
    (run,) = cases_by_policy(data)["round_robin"]["runs"]
    churn = run["churn"]
    assert churn["kills"] == churn["starts"] >= 1
    assert set(churn["first_traffic_s"]) >= {"backend4"}
    assert churn["starved"] == 0
    assert "## Churn" in (tmp_path / "report.md").read_text()


def test_chaos_scenario_counts_sent_failed_and_retried(tmp_path: Path) -> None:
    data = bench(
        tmp_path,
        "--scenario", "chaos", "--quick", "--duration", "9", "--kill-interval", "1.5",
        "--restart-delay", "0.5", "--ttl", "1.5", "--report-interval", "0.3",
    )  # fmt: skip
    (case,) = data["cases"]
    assert case["config"]["policy"] == "least_load"
    assert case["config"]["params"]["restart_delay_s"] == 0.5
    summary = case["runs"][0]["summary"]
    assert summary["requests"] > 100
    assert summary["completed"] + summary["errors"] == summary["requests"]
    assert summary["retries"] >= 0
    assert case["runs"][0]["churn"]["kills"] >= 2  # backends; the LB's kills are not counted
