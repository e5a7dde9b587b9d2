"""PNG plots of a bench run, drawn off-screen with matplotlib's Agg canvas.

Figures are built with the object API (``Figure`` + ``FigureCanvasAgg``) rather
than ``pyplot``: no display, no global figure state, safe to call from any thread.
Each policy keeps one colour in every plot so plots can be compared at a glance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lookaside.bench.metrics import Spread
from lookaside.bench.results import (
    GRPC_ROUND_ROBIN,
    SEED_SCENARIO,
    SWEEP,
    XDS,
    BenchResults,
    CaseResult,
    policy_key,
)
from lookaside.bench.seed_figures import seed_figures

RESPONSE_FIGURES: tuple[tuple[str, str], ...] = (
    ("avg_ms", "avg"),
    ("p50_ms", "p50"),
    ("p95_ms", "p95"),
    ("p99_ms", "p99"),
    ("max_ms", "max"),
)
POLICY_COLOURS: dict[str, str] = {
    "pick_first": "tab:red",
    "round_robin": "tab:blue",
    "least_load": "tab:green",
    "p2c": "tab:olive",
    "prequal": "tab:orange",
    "peak_ewma": "tab:purple",
    GRPC_ROUND_ROBIN: "tab:gray",
    XDS: "tab:pink",
}
FIGURE_COLOURS = ("tab:blue", "tab:cyan", "tab:olive", "tab:orange", "tab:red")
SERVER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")
DPI = 110


def _colour(policy: str) -> str:
    return POLICY_COLOURS.get(policy, "tab:brown")


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    return path


def _policies(cases: Sequence[CaseResult]) -> list[str]:
    return sorted({case.config.policy for case in cases}, key=policy_key)


def _server_groups(cases: Sequence[CaseResult]) -> dict[tuple[int, int], list[CaseResult]]:
    groups: dict[tuple[int, int], list[CaseResult]] = {}
    for case in sorted(cases, key=lambda c: (c.config.servers, c.config.clients)):
        groups.setdefault((case.config.servers, case.config.clients), []).append(case)
    return groups


def _height(s: Spread | None, scale: float) -> tuple[float, float, float]:
    """Bar height (median) and its error bar below/above; zeros for a missing figure."""
    if s is None or s.n == 0 or math.isnan(s.median) or math.isinf(s.max):
        return 0.0, 0.0, 0.0
    return s.median * scale, (s.median - s.min) * scale, (s.max - s.median) * scale


def _bar(
    ax: Axes, x: float, width: float, s: Spread | None, scale: float, colour: str, label: str
) -> None:
    """One bar at the median, whiskers over the min..max of the repeats."""
    height, below, above = _height(s, scale)
    errors = [[below], [above]] if below or above else None
    ax.bar([x], [height], width, yerr=errors, capsize=3, color=colour, label=label)


#: The seed's published figures (seconds) beside our bars of the same name.
SEED_RESPONSE_FIGURES: dict[str, str] = {"avg_ms": "avg_s", "max_ms": "max_s"}


def plot_response_times(
    results: BenchResults, out_dir: Path, scenario: str = SEED_SCENARIO
) -> Path | None:
    """The response-time figure (see :func:`response_times_figure`) as a PNG."""
    figure = response_times_figure(results, scenario)
    if figure is None:
        return None
    return _save(figure, out_dir / f"response_times-{scenario}.png")


def response_times_figure(results: BenchResults, scenario: str = SEED_SCENARIO) -> Figure | None:
    """Grouped bars of avg/p50/p95/p99/max per policy, one panel per server count.

    The axis is logarithmic: ``pick_first`` queues everything on one backend (about
    12 s at the top) and would squash the other policies' sub-second bars on a
    linear one. The original report's avg and max are black diamonds on the bars
    of the same name, as on the throughput plot.
    """
    cases = results.scenario(scenario)
    if not cases:
        return None
    groups = _server_groups(cases)
    figure = Figure(figsize=(6.5 * len(groups), 4.8))
    axes = figure.subplots(1, len(groups), squeeze=False)[0]
    width = 0.8 / len(RESPONSE_FIGURES)
    for ax, ((servers, clients), group) in zip(axes, groups.items(), strict=True):
        by_policy = {case.config.policy: case for case in group}
        policies = _policies(group)
        seed_labelled = False
        for p_index, policy in enumerate(policies):
            agg = by_policy[policy].aggregate()
            seed = seed_figures(servers, policy, clients)
            for f_index, (name, label) in enumerate(RESPONSE_FIGURES):
                x = p_index - 0.4 + width * (f_index + 0.5)
                legend = label if p_index == 0 else "_nolegend_"
                _bar(ax, x, width, agg.get(name), 1e-3, FIGURE_COLOURS[f_index], legend)
                seed_field = SEED_RESPONSE_FIGURES.get(name)
                if seed is not None and seed_field is not None:
                    mark = "_nolegend_" if seed_labelled else "original report"
                    seed_labelled = True
                    ax.plot([x], [getattr(seed, seed_field)], "D", color="black", label=mark)
        best = group[0].config.ideal()
        if best is not None:
            ax.axhline(best.avg_ms / 1000, color="black", linestyle="--", label="ideal avg")
        ax.set_yscale("log")
        ax.set_xticks(range(len(policies)), policies, rotation=15)
        ax.set_ylabel("response time (s, log scale)")
        ax.set_title(f"{servers} backends, {clients} clients")
        low, high = ax.get_ylim()
        ax.set_ylim(low / 3, high * 6)  # room below for short bars, above for the legend
        ax.legend(fontsize="small", loc="upper center", ncols=4)
    figure.suptitle(f"Response time per policy ({scenario})")
    return figure


def plot_throughput(
    results: BenchResults, out_dir: Path, scenario: str = SEED_SCENARIO
) -> Path | None:
    """Throughput per policy, a bar per server count, with the seed's figure and the ideal."""
    cases = results.scenario(scenario)
    if not cases:
        return None
    groups = _server_groups(cases)
    policies = _policies(cases)
    figure = Figure(figsize=(min(12.0, max(6.0, 1.5 * len(policies) * len(groups))), 4.5))
    ax = figure.add_subplot()
    width = 0.8 / len(groups)
    seed_labelled = False
    for g_index, ((servers, clients), group) in enumerate(groups.items()):
        colour = SERVER_COLOURS[g_index % len(SERVER_COLOURS)]
        by_policy = {case.config.policy: case for case in group}
        for p_index, policy in enumerate(policies):
            x = p_index - 0.4 + width * (g_index + 0.5)
            case = by_policy.get(policy)
            if case is None:
                continue
            legend = f"{servers} backends" if p_index == 0 else "_nolegend_"
            _bar(ax, x, width, case.aggregate().get("throughput_rps"), 1.0, colour, legend)
            seed = seed_figures(servers, policy, clients)
            if seed is not None:
                label = "_nolegend_" if seed_labelled else "seed report"
                seed_labelled = True
                ax.plot([x], [seed.throughput_rps], "D", color="black", label=label)
        best = group[0].config.ideal()
        if best is not None:
            ax.axhline(
                best.throughput_rps,
                color=colour,
                linestyle="--",
                label=f"ideal, {servers} backends",
            )
    ax.set_xticks(range(len(policies)), policies, rotation=15)
    ax.set_ylabel("throughput (completed req/s)")
    ax.set_title(f"Throughput per policy ({scenario})")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.25)
    ax.legend(fontsize="small", loc="upper center", ncols=3)
    return _save(figure, out_dir / f"throughput-{scenario}.png")


def plot_backend_usage(
    results: BenchResults, out_dir: Path, scenario: str = SEED_SCENARIO
) -> list[Path]:
    """One bar chart per run: requests per backend, with the even share as a dashed line
    and, where the original report ran the same case, its spread (min..max per backend)
    as a grey band."""
    paths: list[Path] = []
    for case in results.scenario(scenario):
        config = case.config
        for run in case.runs:
            figure = usage_figure(case, run.repeat)
            name = f"usage-{scenario}-{config.servers}-{config.policy}-run{run.repeat}.png"
            paths.append(_save(figure, out_dir / name))
    return paths


def usage_figure(case: CaseResult, repeat: int) -> Figure:
    """Requests per backend in one run of ``case`` (see :func:`plot_backend_usage`)."""
    config = case.config
    seed = seed_figures(config.servers, config.policy, config.clients)
    for run in case.runs:
        if run.repeat == repeat:
            usage = run.summary.backend_usage
            figure = Figure(figsize=(max(5.0, 0.45 * len(usage) + 1.5), 3.5))
            ax = figure.add_subplot()
            ax.bar(range(len(usage)), list(usage.values()), color=_colour(config.policy))
            if seed is not None and seed.usage:
                counts = [*seed.usage.values(), *([0] * (config.servers - len(seed.usage)))]
                ax.axhspan(
                    min(counts),
                    max(counts),
                    color="black",
                    alpha=0.12,
                    label=f"original report: {min(counts)}..{max(counts)}",
                )
            if usage:
                even = run.summary.requests / max(config.servers, 1)
                ax.axhline(even, color="black", linestyle="--", linewidth=1, label="even share")
                ax.legend(fontsize="small")
            ax.set_xticks(range(len(usage)), list(usage), rotation=60, fontsize="small")
            ax.set_ylabel("requests")
            ax.set_title(
                f"{config.policy}: {config.servers} backends, {config.clients} clients, "
                f"run {run.repeat}"
            )
            return figure
    raise ValueError(f"no run {repeat} in this case")


def plot_sweep(results: BenchResults, out_dir: Path) -> Path | None:
    """p50 and p99 against offered load, one line per policy (medians, min..max shaded)."""
    cases = results.scenario(SWEEP)
    if not cases:
        return None
    figure = Figure(figsize=(12, 4.5))
    axes = figure.subplots(1, 2)
    for ax, (name, label) in zip(axes, (("p50_ms", "p50"), ("p99_ms", "p99")), strict=True):
        for policy in _policies(cases):
            points = sorted(
                (float(c.config.params["load_factor"]) * 100, c.aggregate().get(name))
                for c in cases
                if c.config.policy == policy
            )
            xs = [x for x, s in points if s is not None and s.n]
            spreads = [s for _, s in points if s is not None and s.n]
            colour = _colour(policy)
            ax.plot(xs, [s.median for s in spreads], marker="o", color=colour, label=policy)
            ax.fill_between(
                xs, [s.min for s in spreads], [s.max for s in spreads], color=colour, alpha=0.15
            )
        ax.set_yscale("log")
        ax.set_xlabel("offered load (% of capacity)")
        ax.set_ylabel(f"{label} response time (ms, log scale)")
        ax.set_title(f"{label} against offered load")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle("Load sweep: heterogeneous backends, medians over repeats")
    return _save(figure, out_dir / "sweep.png")


def plot_all(results: BenchResults, out_dir: Path) -> list[Path]:
    """Every plot for every scenario in ``results``; returns the PNG paths written.

    A sweep gets its curve only: per-case bars would be dozens of panels.
    """
    paths: list[Path] = []
    sweep = plot_sweep(results, out_dir)
    if sweep is not None:
        paths.append(sweep)
    for scenario in results.scenarios:
        if scenario == SWEEP:
            continue
        for path in (
            plot_response_times(results, out_dir, scenario),
            plot_throughput(results, out_dir, scenario),
        ):
            if path is not None:
                paths.append(path)
        paths += plot_backend_usage(results, out_dir, scenario)
    return paths
