"""What the lab shows on the terminal: rich progress bars and summary tables."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from lookaside.bench.metrics import RequestRecord, RunSummary, Spread
from lookaside.bench.report import RATIO_BASELINES, number
from lookaside.bench.results import (
    BURST,
    SEED_SCENARIO,
    SWEEP,
    BenchResults,
    CaseResult,
    RunResult,
)
from lookaside.bench.runner import Progress


class RichBenchProgress(Progress):
    """Two bars: cases done of all, and requests done in the current case."""

    def __init__(self, cases: int, console: Console | None = None) -> None:
        self.bars = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._cases = self.bars.add_task("cases", total=cases)
        self._requests: TaskID | None = None

    def __enter__(self) -> RichBenchProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def case_started(self, label: str, requests: int) -> None:
        self.bars.update(self._cases, description=f"cases · now {label}")
        if self._requests is None:
            self._requests = self.bars.add_task("requests", total=requests)
        else:
            self.bars.reset(self._requests, total=requests)

    def request_done(self, record: RequestRecord) -> None:
        if self._requests is not None:
            self.bars.advance(self._requests)

    def case_finished(self, label: str, result: RunResult) -> None:
        s = result.summary
        self.bars.console.print(
            f"  {label}: {s.completed}/{s.requests} ok"
            + (f" ({s.retries} retried)" if s.retries else "")
            + f", p50 {number(s.response_ms.p50_ms, 1)} ms,"
            f" p99 {number(s.response_ms.p99_ms, 1)} ms, {number(s.throughput_rps, 2)} req/s,"
            f" usage {s.usage_spread}"
        )
        self.bars.advance(self._cases)


def _median(s: Spread | None, digits: int, scale: float = 1.0) -> str:
    return "—" if s is None else number(s.median * scale, digits)


def _ms(s: Spread | None) -> str:
    return _median(s, 1)


def _ratio(case: CaseResult, baseline: CaseResult | None, figure: str) -> str:
    if baseline is None:
        return "—"
    ours, theirs = case.aggregate().get(figure), baseline.aggregate().get(figure)
    if ours is None or theirs is None or not theirs.median > 0:
        return "—"
    return number(ours.median / theirs.median, 2)


def _load(case: CaseResult) -> float:
    return float(case.config.params.get("load_factor", 0.0))


def summary_tables(results: BenchResults) -> list[Table]:
    """One table per scenario, one row per case, medians over repeats.

    The seed's scenario shows efficiency against the ideal; open-loop ones show
    p99 as a ratio to round_robin and grpc_round_robin of the same run. A sweep
    adds the offered load; closed-loop bursts add busiest backend / mean.
    """
    tables = []
    for scenario in results.scenarios:
        cases = results.scenario(scenario)
        if scenario == SWEEP:
            cases = tuple(sorted(cases, key=_load))
        seed = scenario == SEED_SCENARIO
        burst = scenario in (SEED_SCENARIO, BURST)
        retries = any(run.summary.retries for case in cases for run in case.runs)
        table = Table(title=f"{scenario} — medians over repeats")
        columns = ["N", *(["load"] if scenario == SWEEP else []), "policy", "p50 ms", "p99 ms",
                   "avg ms", "req/s", "errors"]  # fmt: skip
        columns += ["retries"] if retries else []
        columns += ["busiest/mean"] if burst else []
        columns += ["efficiency"] if seed else [f"p50/p99 ÷ {b}" for b in ("rr", "grpc_rr")]
        for column in columns:
            table.add_column(column, justify="left" if column == "policy" else "right")
        for case in cases:
            agg = case.aggregate()
            same = {
                c.config.policy: c
                for c in cases
                if c.config.servers == case.config.servers and _load(c) == _load(case)
            }
            row = [str(case.config.servers)]
            row += [f"{_load(case):.0%}"] if scenario == SWEEP else []
            row += [
                case.config.policy,
                _ms(agg.get("p50_ms")),
                _ms(agg.get("p99_ms")),
                _ms(agg.get("avg_ms")),
                _median(agg.get("throughput_rps"), 2),
                _median(agg.get("errors"), 0),
            ]
            row += [str(sum(run.summary.retries for run in case.runs))] if retries else []
            row += [_median(agg.get("busiest_ratio"), 2)] if burst else []
            if seed:
                row.append(_median(agg.get("efficiency"), 0, 100) + " %")
            else:
                row += [
                    "/".join(_ratio(case, same.get(b), f) for f in ("p50_ms", "p99_ms"))
                    for b in RATIO_BASELINES
                ]
            table.add_row(*row)
        tables.append(table)
    return tables


def run_table(summary: RunSummary, title: str = "scale-clients") -> Table:
    """The seed's figures for one client run: response time, its two parts, throughput."""
    table = Table(title=title)
    table.add_column("figure")
    for column in ("avg", "min", "max", "p50", "p95", "p99"):
        table.add_column(f"{column} ms", justify="right")
    for name, stats in (
        ("response time", summary.response_ms),
        ("  LB query (GetBackend)", summary.lb_ms),
        ("  compute call (ComputeTask)", summary.compute_ms),
    ):
        table.add_row(
            name,
            *(
                number(v, 1)
                for v in (stats.avg_ms, stats.min_ms, stats.max_ms, stats.p50_ms,
                          stats.p95_ms, stats.p99_ms)
            ),
        )  # fmt: skip
    return table


def usage_line(usage: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in usage.items()) or "none"


def print_run(console: Console, summary: RunSummary, title: str = "scale-clients") -> None:
    console.print(run_table(summary, title))
    console.print(
        f"requests {summary.requests}, completed {summary.completed}, errors {summary.errors}"
        + (f" {summary.error_kinds}" if summary.errors else "")
        + f", wall {summary.wall_s:.3f} s, throughput {summary.throughput_rps:.2f} req/s"
    )
    console.print(f"backend usage ({summary.usage_spread}): {usage_line(summary.backend_usage)}")
