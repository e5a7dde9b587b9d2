"""Writes ``report.md``: our figures beside the seed's published ones and the ideal.

Every figure is the median over repeats, followed by its range ``[min..max]``
when more than one repeat ran, so a reader can tell a real difference from noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from itertools import groupby
from pathlib import Path

from lookaside.bench.metrics import Spread
from lookaside.bench.results import (
    BURST,
    CHAOS,
    CHURN,
    GRPC_ROUND_ROBIN,
    HETEROGENEOUS,
    SEED_SCENARIO,
    STALLS,
    SWEEP,
    XDS,
    XDS_LB_POLICY,
    BenchResults,
    CaseConfig,
    CaseResult,
)
from lookaside.bench.seed_figures import SeedFigures, seed_figures

MISSING = "—"
RATIO_BASELINES = ("round_robin", GRPC_ROUND_ROBIN)


def number(value: float | None, digits: int = 3) -> str:
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "never"
    return f"{value:.{digits}f}"


def spread(s: Spread | None, scale: float = 1.0, digits: int = 3) -> str:
    """``median`` or ``median [min..max]``, each multiplied by ``scale`` (e.g. ms -> s)."""
    if s is None or s.n == 0:
        return MISSING
    median = number(s.median * scale, digits)
    if s.n == 1 or s.min == s.max:
        return median
    return f"{median} [{number(s.min * scale, digits)}..{number(s.max * scale, digits)}]"


def _percent(s: Spread | None) -> str:
    text = spread(s, 100, 0)
    return text if text == MISSING else f"{text} %"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _group_key(config: CaseConfig) -> tuple[int, int, int, float, int]:
    return (config.servers, config.clients, config.requests_per_client, config.work_ms,
            config.workers)  # fmt: skip


def _groups(cases: Sequence[CaseResult]) -> list[list[CaseResult]]:
    ordered = sorted(cases, key=lambda c: _group_key(c.config))
    return [list(g) for _, g in groupby(ordered, key=lambda c: _group_key(c.config))]


def _heading(config: CaseConfig) -> str:
    return (
        f"### {config.servers} backends · {config.clients} clients x "
        f"{config.requests_per_client} request(s) · {config.workers} workers · "
        f"{config.work_ms:g} ms work"
    )


def _seed(case: CaseResult) -> SeedFigures | None:
    c = case.config
    return seed_figures(c.servers, c.policy, c.clients) if c.requests_per_client == 1 else None


def _seed_value(case: CaseResult, pick: Callable[[SeedFigures], float], digits: int = 3) -> str:
    figures = _seed(case)
    return MISSING if figures is None else number(pick(figures), digits)


def _seed_usage(case: CaseResult) -> str:
    figures = _seed(case)
    if figures is None:
        return MISSING
    if figures.usage is None:
        return figures.usage_note
    counts = list(figures.usage.values()) + [0] * (case.config.servers - len(figures.usage))
    used = sum(1 for c in counts if c > 0)
    return f"{min(counts)}..{max(counts)} ({used}/{case.config.servers} used)"


def _usage_spread(case: CaseResult) -> str:
    spreads = {str(run.summary.usage_spread) for run in case.runs}
    return " · ".join(sorted(spreads))


def _seed_section(results: BenchResults) -> list[str]:
    cases = results.scenario(SEED_SCENARIO)
    if not cases:
        return []
    lines = [
        "## The seed's experiment",
        "",
        "Response times are per request from the client (LB query + compute call). "
        "**seed** is the seed report's published figure for the same case; **ideal** is the "
        "best any balancer could do: R requests on N backends with W workers and work time T "
        "run in ceil(R / (N·W)) waves of T. **efficiency** = ideal wall time / our wall time.",
        "",
    ]
    for group in _groups(cases):
        config = group[0].config
        best = config.ideal()
        lines += [_heading(config), ""]
        if best is not None:
            lines += [
                f"Ideal: wall {best.wall_s:.3f} s, throughput {best.throughput_rps:.2f} req/s, "
                f"response min/avg/max {best.min_ms / 1000:.3f} / {best.avg_ms / 1000:.3f} / "
                f"{best.max_ms / 1000:.3f} s.",
                "",
            ]
        ideal_s = {
            "avg": MISSING if best is None else number(best.avg_ms / 1000),
            "max": MISSING if best is None else number(best.max_ms / 1000),
            "min": MISSING if best is None else number(best.min_ms / 1000),
        }
        rows = []
        for case in group:
            agg = case.aggregate()
            rows.append([
                case.config.policy,
                spread(agg.get("avg_ms"), 1e-3), _seed_value(case, lambda f: f.avg_s),
                ideal_s["avg"],
                spread(agg.get("max_ms"), 1e-3), _seed_value(case, lambda f: f.max_s),
                ideal_s["max"],
                spread(agg.get("min_ms"), 1e-3), _seed_value(case, lambda f: f.min_s),
                ideal_s["min"],
                spread(agg.get("p50_ms"), 1e-3),
                spread(agg.get("p95_ms"), 1e-3),
                spread(agg.get("p99_ms"), 1e-3),
            ])  # fmt: skip
        header = ["policy", "avg (s)", "seed", "ideal", "max (s)", "seed", "ideal",
                  "min (s)", "seed", "ideal", "p50 (s)", "p95 (s)", "p99 (s)"]  # fmt: skip
        lines += ["Response time:", "", *table(header, rows), ""]
        rows = []
        for case in group:
            agg = case.aggregate()
            rows.append([
                case.config.policy,
                spread(agg.get("throughput_rps"), digits=2),
                _seed_value(case, lambda f: f.throughput_rps, 2),
                MISSING if best is None else number(best.throughput_rps, 2),
                spread(agg.get("wall_s")),
                _percent(agg.get("efficiency")),
                spread(agg.get("errors"), digits=0),
                spread(agg.get("lb_avg_ms"), digits=2),
                spread(agg.get("compute_avg_ms"), digits=1),
                _usage_spread(case),
                _seed_usage(case),
            ])  # fmt: skip
        header = ["policy", "throughput (req/s)", "seed", "ideal", "wall (s)", "efficiency",
                  "errors", "LB query avg (ms)", "compute avg (ms)", "requests per backend",
                  "seed"]  # fmt: skip
        lines += ["Throughput and distribution:", "", *table(header, rows), ""]
        lines += _usage_details(group)
    return lines


def _usage_details(group: Sequence[CaseResult]) -> list[str]:
    lines = ["Backend usage (requests per backend, every run):", ""]
    for case in group:
        for run in case.runs:
            usage = ", ".join(f"{k} {v}" for k, v in run.summary.backend_usage.items())
            lines.append(f"- {case.config.policy} #{run.repeat}: {usage or MISSING}")
    return [*lines, ""]


def _params(cases: Sequence[CaseResult]) -> str:
    params = dict(cases[0].config.params)
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def _ratio(ours: Spread | None, theirs: Spread | None) -> str:
    if ours is None or theirs is None or not theirs.median > 0:
        return MISSING
    return number(ours.median / theirs.median, 2)


def _ratios(case: CaseResult, baseline: CaseResult | None) -> str:
    """Our p50/p95/p99 medians divided by the baseline's, or a dash without a baseline."""
    if baseline is None:
        return MISSING
    ours, theirs = case.aggregate(), baseline.aggregate()
    return " / ".join(_ratio(ours.get(n), theirs.get(n)) for n in ("p50_ms", "p95_ms", "p99_ms"))


Row = Callable[[CaseResult, dict[str, CaseResult]], list[str]]


def _section(
    results: BenchResults, scenario: str, title: str, intro: str, header: Sequence[str], row: Row
) -> list[str]:
    """A scenario's section: title, intro, parameters, and a table per configuration."""
    cases = results.scenario(scenario)
    if not cases:
        return []
    lines = [
        f"## {title}",
        "",
        *([intro, ""] if intro else []),
        f"Parameters: {_params(cases)}.",
        "",
    ]
    for group in _groups(cases):
        by_policy = {case.config.policy: case for case in group}
        lines += [_heading(group[0].config), ""]
        lines += [*table(header, [row(case, by_policy) for case in group]), ""]
    return lines


TAIL_HEADER = ("policy", "p50 (ms)", "p95 (ms)", "p99 (ms)", "throughput (req/s)", "errors",
               *(f"p50/p95/p99 ÷ {b}" for b in RATIO_BASELINES))  # fmt: skip


def _tail_row(case: CaseResult, by_policy: dict[str, CaseResult]) -> list[str]:
    agg = case.aggregate()
    return [
        case.config.policy,
        spread(agg.get("p50_ms"), digits=1),
        spread(agg.get("p95_ms"), digits=1),
        spread(agg.get("p99_ms"), digits=1),
        spread(agg.get("throughput_rps"), digits=2),
        spread(agg.get("errors"), digits=0),
        *(_ratios(case, by_policy.get(b)) for b in RATIO_BASELINES),
    ]


def _tail_section(results: BenchResults, scenario: str, title: str, intro: str) -> list[str]:
    return _section(results, scenario, title, intro, TAIL_HEADER, _tail_row)


CHAOS_HEADER = ("policy", "sent", "succeeded", "failed", "retried", "p50 (ms)", "p95 (ms)",
                "p99 (ms)", "max (ms)")  # fmt: skip
CHAOS_INTRO = (
    "Sustained open-loop load through `LookasideClient` (failover, retries, deadline) while "
    "backends are SIGKILLed and restarted under the same id, and every third time the LB "
    "instead, on the same port. The goal is no failed request."
)


def _chaos_row(case: CaseResult, by_policy: dict[str, CaseResult]) -> list[str]:
    agg = case.aggregate()
    runs = [run.summary for run in case.runs]
    return [
        case.config.policy,
        str(sum(s.requests for s in runs)),
        str(sum(s.completed for s in runs)),
        str(sum(s.errors for s in runs)),
        str(sum(s.retries for s in runs)),
        *(spread(agg.get(f), digits=1) for f in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
    ]


CHURN_HEADER = ("policy", "requests (all runs)", "errors", "stale window (s)", "stale picks",
                "first traffic (s)", "starved", "p99 (ms)")  # fmt: skip
CHURN_INTRO = (
    "Sustained load while backends are SIGKILLed and new ones started. **stale window**: "
    "how long after its kill a dead backend was still handed out (worst backend); "
    "**first traffic**: how long after a new backend was ready it first got a request "
    "(slowest backend; *never* if one got none)."
)


def _churn_row(case: CaseResult, by_policy: dict[str, CaseResult]) -> list[str]:
    agg = case.aggregate()
    return [
        case.config.policy,
        str(sum(run.summary.requests for run in case.runs)),
        spread(agg.get("errors"), digits=0),
        spread(agg.get("stale_window_s")),
        spread(agg.get("stale_picks"), digits=0),
        spread(agg.get("first_traffic_s")),
        spread(agg.get("starved"), digits=0),
        spread(agg.get("p99_ms"), digits=1),
    ]


STALLS_INTRO = (
    "Equal backends under open-loop Poisson load; now and then (every `stall_interval_s` on "
    "average) one backend at a time is stopped with SIGSTOP for `stall_ms` and continued "
    "with SIGCONT, as a process under a GC pause: it answers nothing and reports nothing, "
    "but its connections and lease stay up, so the LB is not told."
)
BURST_HEADER = ("policy", "p50 (ms)", "p99 (ms)", "busiest / mean", "requests per backend")
BURST_INTRO = (
    "All clients send one request at the same moment to idle backends: the spread shows "
    "whether a policy herds onto the backend that looks best. busiest / mean = 1.0 is "
    "perfectly even."
)


def _burst_row(case: CaseResult, by_policy: dict[str, CaseResult]) -> list[str]:
    agg = case.aggregate()
    return [
        case.config.policy,
        spread(agg.get("p50_ms"), digits=1),
        spread(agg.get("p99_ms"), digits=1),
        spread(agg.get("busiest_ratio"), digits=2),
        _usage_spread(case),
    ]


SWEEP_HEADER = ("offered load", "policy", "p50 (ms)", "p99 (ms)", "errors",
                f"p50/p95/p99 ÷ {GRPC_ROUND_ROBIN}")  # fmt: skip


def _sweep_section(results: BenchResults) -> list[str]:
    """One table: every load, then every policy, with the ratio to the baseline at that load."""
    cases = sorted(results.scenario(SWEEP), key=lambda c: float(c.config.params["load_factor"]))
    if not cases:
        return []
    rows = []
    for case in cases:
        load = case.config.params["load_factor"]
        baseline = next(
            (c for c in cases
             if c.config.policy == GRPC_ROUND_ROBIN and c.config.params["load_factor"] == load),
            None,
        )  # fmt: skip
        agg = case.aggregate()
        rows.append([
            f"{float(load):.0%}",
            case.config.policy,
            spread(agg.get("p50_ms"), digits=1),
            spread(agg.get("p99_ms"), digits=1),
            spread(agg.get("errors"), digits=0),
            _ratios(case, baseline),
        ])  # fmt: skip
    params = {
        k: v for k, v in cases[0].config.params.items() if k not in ("load_factor", "rate_rps")
    }
    return [
        "## Load sweep",
        "",
        "The heterogeneous configuration at every offered load (a share of the total "
        "capacity): the latency-throughput curve of each policy, drawn in `sweep.png`.",
        "",
        "Parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()) + ".",
        "",
        *table(SWEEP_HEADER, rows),
        "",
    ]


def render_report(results: BenchResults) -> str:
    env = results.environment
    repeats = max((len(case.runs) for case in results.cases), default=0)
    options = ", ".join(f"{k}={v}" for k, v in results.options.items()) or "defaults"
    lines = [
        "# lookaside benchmark report",
        "",
        f"Machine: {env.cpu_count} CPUs ({env.usable_cpus} usable), {env.platform}; "
        f"Python {env.python}, grpcio {env.grpcio}, protobuf {env.protobuf}; "
        f"run at {env.timestamp}" + (f", commit `{env.commit}`." if env.commit else "."),
        "",
        f"Options: {options}.",
        "",
        f"Repeats per case: {repeats}. "
        + ("Figures are medians with their [min..max] range." if repeats > 1 else "")
        + f" `{GRPC_ROUND_ROBIN}` is gRPC's own client-side round_robin over the static "
        f"backend list, with no LB server. `{XDS}` is a stock grpcio client in a process of "
        "its own, with no lookaside code, dialling `xds:///SERVICE`: the LB "
        f"(`{XDS_LB_POLICY}`) is its xDS control plane and hands it locality weights "
        "computed from load; it calls the backends directly.",
        "",
    ]
    lines += _seed_section(results)
    lines += _tail_section(
        results,
        HETEROGENEOUS,
        "Heterogeneous backends",
        "Some backends are slower (`slow_backends`, `slow_factor` x the work); open-loop "
        "Poisson arrivals at `load_factor` x the total capacity, latency measured from each "
        "request's scheduled arrival, so queueing shows in the tail. Percentiles cover "
        "successful requests; failures are counted under errors. Ratios below 1 beat the "
        "baseline.",
    )
    lines += _section(results, CHURN, "Churn", CHURN_INTRO, CHURN_HEADER, _churn_row)
    lines += _section(results, CHAOS, "Chaos", CHAOS_INTRO, CHAOS_HEADER, _chaos_row)
    lines += _tail_section(results, STALLS, "Stalls", STALLS_INTRO)
    lines += _section(results, BURST, "Burst", BURST_INTRO, BURST_HEADER, _burst_row)
    lines += _sweep_section(results)
    known = {SEED_SCENARIO, HETEROGENEOUS, CHURN, CHAOS, STALLS, BURST, SWEEP}
    for scenario in results.scenarios:
        if scenario not in known:
            lines += _tail_section(results, scenario, f"Scenario: {scenario}", "")
    return "\n".join(lines).rstrip() + "\n"


def plots_section(report_dir: Path, plots: Sequence[Path]) -> list[str]:
    """The plots embedded in the report (paths relative to it, so the folder can move)."""
    if not plots:
        return []
    lines = ["## Plots", ""]
    for plot in plots:
        relative = plot.relative_to(report_dir) if plot.is_relative_to(report_dir) else plot
        lines += [f"![{plot.stem}]({relative.as_posix()})", ""]
    return lines


def write_report(results: BenchResults, path: Path, plots: Sequence[Path] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_report(results) + "\n".join(["", *plots_section(path.parent, plots)])
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
    return path
