"""Plots are written off-screen as real PNGs, one usage chart per run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lookaside.bench.metrics import RequestRecord, summarize
from lookaside.bench.plots import (
    plot_all,
    plot_backend_usage,
    plot_response_times,
    plot_throughput,
)
from lookaside.bench.results import (
    GRPC_ROUND_ROBIN,
    HETEROGENEOUS,
    BenchResults,
    CaseConfig,
    CaseResult,
    Environment,
    RunResult,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
POLICIES = ("pick_first", "round_robin", "least_load", GRPC_ROUND_ROBIN)
ENV = Environment(2, 2, "Linux-test", "3.11.2", "1.85.3", "7.36.2", "2025-01-01T00:00:00+00:00")


def case(policy: str, servers: int, repeats: int = 2, scenario: str = "seed") -> CaseResult:
    config = CaseConfig(policy, servers, 40, scenario=scenario)
    ids = [f"backend{i}" for i in range(1, servers + 1)]
    runs = []
    for repeat in range(1, repeats + 1):
        recs = [
            RequestRecord(
                "backend1" if policy == "pick_first" else ids[i % servers],
                i * 0.01,
                i * 0.01 + 0.5,
                1.0,
                499.0 + i * repeat,
                500.0 + i * repeat,
                True,
            )
            for i in range(40)
        ]
        summary = summarize(recs, wall_s=1.0 + repeat * 0.2, backend_ids=ids)
        runs.append(RunResult(config, repeat, summary))
    return CaseResult(config, tuple(runs))


def results() -> BenchResults:
    return BenchResults(ENV, tuple(case(p, n) for n in (10, 15) for p in POLICIES))


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000  # axes, bars and labels, not an empty canvas
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        assert width > 300 and height > 200
        # Something was drawn: an empty white canvas has a single colour.
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 10


def test_response_times_plot(tmp_path: Path) -> None:
    path = plot_response_times(results(), tmp_path)
    assert path == tmp_path / "response_times-seed.png"
    assert_png(path)


def test_response_times_panels_per_server_count(tmp_path: Path) -> None:
    one = plot_response_times(BenchResults(ENV, (case("round_robin", 10),)), tmp_path / "one")
    two = plot_response_times(results(), tmp_path / "two")
    assert one is not None and two is not None
    with Image.open(one) as a, Image.open(two) as b:
        assert b.size[0] > a.size[0]  # a second panel for 15 backends widens the figure


def test_throughput_plot(tmp_path: Path) -> None:
    path = plot_throughput(results(), tmp_path)
    assert path == tmp_path / "throughput-seed.png"
    assert_png(path)


def test_one_usage_chart_per_run(tmp_path: Path) -> None:
    paths = plot_backend_usage(results(), tmp_path)
    assert len(paths) == 2 * len(POLICIES) * 2  # server counts x policies x repeats
    assert tmp_path / "usage-seed-10-grpc_round_robin-run2.png" in paths
    assert tmp_path / "usage-seed-15-pick_first-run1.png" in paths
    for path in paths:
        assert_png(path)


def test_plot_all_covers_every_scenario(tmp_path: Path) -> None:
    mixed = BenchResults(
        ENV,
        (
            case("round_robin", 10, repeats=1),
            case("least_load", 6, repeats=1, scenario=HETEROGENEOUS),
        ),
    )
    paths = plot_all(mixed, tmp_path / "plots")
    names = sorted(p.name for p in paths)
    assert names == [
        "response_times-heterogeneous.png",
        "response_times-seed.png",
        "throughput-heterogeneous.png",
        "throughput-seed.png",
        "usage-heterogeneous-6-least_load-run1.png",
        "usage-seed-10-round_robin-run1.png",
    ]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == names


@pytest.mark.parametrize("plot", [plot_response_times, plot_throughput])
def test_absent_scenario_writes_nothing(tmp_path: Path, plot: object) -> None:
    assert callable(plot)
    assert plot(results(), tmp_path, "churn") is None
    assert plot_backend_usage(results(), tmp_path, "churn") == []
    assert list(tmp_path.iterdir()) == []
