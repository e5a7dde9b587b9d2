"""The bench's plots and report as a newcomer reads them: a log axis for response times
with the original report's figures marked, its usage spread on the usage charts, and the
plots embedded in report.md."""

from __future__ import annotations

from pathlib import Path

from lookaside.bench.metrics import RequestRecord, summarize
from lookaside.bench.plots import plot_all, response_times_figure, usage_figure
from lookaside.bench.report import write_report
from lookaside.bench.results import BenchResults, CaseConfig, CaseResult, Environment, RunResult

ENV = Environment(2, 2, "Linux-test", "3.11.2", "1.85.3", "7.36.2", "2025-01-01T00:00:00+00:00")


def case(policy: str, servers: int = 10, clients: int = 100) -> CaseResult:
    config = CaseConfig(policy, servers, clients)
    ids = [f"backend{i}" for i in range(1, servers + 1)]
    seconds = 12.0 if policy == "pick_first" else 0.9
    records = [
        RequestRecord(ids[0] if policy == "pick_first" else ids[i % servers], i * 0.01,
                      i * 0.01 + seconds, 1.0, seconds * 1000 - 1, seconds * 1000, True)
        for i in range(clients)
    ]  # fmt: skip
    summary = summarize(records, wall_s=seconds + 1, backend_ids=ids)
    return CaseResult(config, (RunResult(config, 1, summary),))


def seed_results() -> BenchResults:
    return BenchResults(ENV, tuple(case(p) for p in ("pick_first", "round_robin", "least_load")))


def test_response_times_use_a_log_axis_with_the_original_figures() -> None:
    figure = response_times_figure(seed_results())
    assert figure is not None
    [ax] = figure.axes
    assert ax.get_yscale() == "log"
    marks = [line for line in ax.get_lines() if line.get_marker() == "D"]
    assert len(marks) == 6  # avg and max of the original report, for each of three policies
    heights = sorted(float(line.get_ydata()[0]) for line in marks)
    assert heights[-1] == 12.780  # pick_first's max, 10 backends, as published
    assert "original report" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_usage_charts_show_the_original_spread() -> None:
    figure = usage_figure(case("least_load"), 1)
    [ax] = figure.axes
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "original report: 6..13" in labels


def test_report_embeds_its_plots(tmp_path: Path) -> None:
    results = seed_results()
    plots = plot_all(results, tmp_path)
    report = write_report(results, tmp_path / "report.md", plots).read_text()
    for plot in plots:
        assert f"]({plot.name})" in report
    assert "## Plots" in report
