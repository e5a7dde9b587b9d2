"""Metric computations of the benchmark lab, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lookaside.bench.churn import ChurnEvent, churn_figures
from lookaside.bench.metrics import (
    LatencyStats,
    RequestRecord,
    Spread,
    UsageSpread,
    aggregate,
    backend_usage,
    efficiency,
    ideal,
    ideal_wall_s,
    natural_sorted,
    percentile,
    summarize,
    throughput,
)


def record(
    backend: str = "backend1",
    start: float = 0.0,
    total_ms: float = 100.0,
    ok: bool = True,
    lb_ms: float = 1.0,
    error: str = "",
    retries: int = 0,
) -> RequestRecord:
    return RequestRecord(
        backend_id=backend,
        start=start,
        end=start + total_ms / 1000,
        lb_ms=lb_ms,
        compute_ms=total_ms - lb_ms,
        total_ms=total_ms,
        ok=ok,
        error=error,
        retries=retries,
    )


class TestPercentile:
    def test_hand_computed_values_on_one_to_ten(self) -> None:
        values = [float(v) for v in range(10, 0, -1)]  # unsorted on purpose
        # rank h = (n - 1) * q / 100 = 9q/100; interpolate between neighbours.
        assert percentile(values, 50) == pytest.approx(5.5)  # h = 4.5
        assert percentile(values, 95) == pytest.approx(9.55)  # h = 8.55
        assert percentile(values, 99) == pytest.approx(9.91)  # h = 8.91
        assert percentile(values, 0) == 1.0
        assert percentile(values, 100) == 10.0

    def test_four_values(self) -> None:
        values = [10.0, 20.0, 30.0, 40.0]
        assert percentile(values, 50) == pytest.approx(25.0)  # h = 1.5
        assert percentile(values, 95) == pytest.approx(38.5)  # h = 2.85
        assert percentile(values, 25) == pytest.approx(17.5)  # h = 0.75

    def test_single_value_is_every_percentile(self) -> None:
        assert percentile([7.0], 0) == percentile([7.0], 99) == 7.0

    def test_matches_numpy_default_linear_method(self) -> None:
        values = [0.52, 1.9, 0.61, 1.24, 2.2, 0.9, 1.1, 1.3, 0.75]
        for q in (1, 37.5, 50, 90, 95, 99):
            assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))

    def test_rejects_empty_and_out_of_range(self) -> None:
        with pytest.raises(ValueError):
            percentile([], 50)
        with pytest.raises(ValueError):
            percentile([1.0], 101)


class TestLatencyStats:
    def test_of_values(self) -> None:
        stats = LatencyStats.of([400.0, 100.0, 300.0, 200.0])
        assert stats.count == 4
        assert stats.avg_ms == pytest.approx(250.0)
        assert (stats.min_ms, stats.max_ms) == (100.0, 400.0)
        assert stats.p50_ms == pytest.approx(250.0)
        assert stats.p95_ms == pytest.approx(385.0)
        assert stats.p99_ms == pytest.approx(397.0)

    def test_empty_is_nan_not_zero(self) -> None:
        stats = LatencyStats.of([])
        assert stats.count == 0
        assert math.isnan(stats.avg_ms) and math.isnan(stats.p99_ms)


class TestNaturalSort:
    def test_numbers_compare_by_value(self) -> None:
        names = ["backend10", "backend2", "backend1", "backend12", "backend3"]
        assert natural_sorted(names) == [
            "backend1",
            "backend2",
            "backend3",
            "backend10",
            "backend12",
        ]

    def test_mixed_prefixes_and_no_digits(self) -> None:
        names = ["b10", "a2", "b9", "a10", "z", "a"]
        assert natural_sorted(names) == ["a", "a2", "a10", "b9", "b10", "z"]

    def test_backend_usage_is_naturally_ordered_and_lists_idle_backends(self) -> None:
        records = [record("backend10"), record("backend2"), record("backend2"), record("")]
        usage = backend_usage(records, backend_ids=["backend1", "backend2", "backend10"])
        assert list(usage.items()) == [("backend1", 0), ("backend2", 2), ("backend10", 1)]


class TestSummarize:
    def test_throughput_counts_completed_requests_over_whole_wall_time(self) -> None:
        records = [record(f"backend{i % 4 + 1}", start=i * 0.1) for i in range(8)]
        records += [record("backend1", ok=False, error="UNAVAILABLE") for _ in range(2)]
        summary = summarize(records, wall_s=2.0)
        assert summary.requests == 10
        assert summary.completed == 8
        assert summary.errors == 2
        assert summary.throughput_rps == pytest.approx(4.0)
        assert summary.error_kinds == {"UNAVAILABLE": 2}
        # Failed requests still went to backend1: usage counts every request sent.
        assert summary.backend_usage == {
            "backend1": 4,
            "backend2": 2,
            "backend3": 2,
            "backend4": 2,
        }
        assert summary.usage_spread == UsageSpread(2, 4, 4, 4)

    def test_latencies_cover_successes_only(self) -> None:
        records = [record(total_ms=100.0), record(total_ms=300.0), record(total_ms=9e9, ok=False)]
        summary = summarize(records, wall_s=1.0)
        assert summary.response_ms.max_ms == 300.0
        assert summary.response_ms.avg_ms == pytest.approx(200.0)
        assert summary.lb_ms.avg_ms == pytest.approx(1.0)
        assert summary.compute_ms.avg_ms == pytest.approx(199.0)

    def test_wall_time_defaults_to_the_span_of_the_records(self) -> None:
        records = [record(start=1.0, total_ms=500.0), record(start=1.25, total_ms=1000.0)]
        summary = summarize(records)
        assert summary.wall_s == pytest.approx(1.25)  # 1.0 .. 2.25
        assert summary.throughput_rps == pytest.approx(1.6)

    def test_retries_are_summed(self) -> None:
        summary = summarize([record(retries=2), record(retries=1), record()], wall_s=1.0)
        assert summary.retries == 3

    def test_throughput_rejects_non_positive_wall(self) -> None:
        assert throughput(100, 2.5) == pytest.approx(40.0)
        with pytest.raises(ValueError):
            throughput(1, 0.0)


class TestIdeal:
    def test_seed_configuration_ten_backends(self) -> None:
        # R=100, N=10, W=4, T=0.5 s: ceil(100 / 40) = 3 waves -> 1.5 s.
        assert ideal_wall_s(100, 10, 4, 0.5) == pytest.approx(1.5)
        best = ideal(100, 10, 4, 0.5)
        assert best.wall_s == pytest.approx(1.5)
        assert best.throughput_rps == pytest.approx(100 / 1.5)
        assert best.min_ms == pytest.approx(500.0)
        assert best.max_ms == pytest.approx(1500.0)
        # Waves of 40, 40, 20 finish at 0.5, 1.0, 1.5 s: (40*0.5 + 40*1.0 + 20*1.5) / 100.
        assert best.avg_ms == pytest.approx(900.0)

    def test_seed_configuration_fifteen_backends(self) -> None:
        best = ideal(100, 15, 4, 0.5)  # 60 slots: waves of 60 and 40
        assert best.wall_s == pytest.approx(1.0)
        assert best.throughput_rps == pytest.approx(100.0)
        assert best.avg_ms == pytest.approx(700.0)

    def test_exact_fit_is_one_wave(self) -> None:
        assert ideal_wall_s(40, 10, 4, 0.5) == pytest.approx(0.5)
        assert ideal_wall_s(41, 10, 4, 0.5) == pytest.approx(1.0)

    def test_fewer_clients_than_slots_limit_concurrency(self) -> None:
        # 5 closed-loop clients can keep only 5 of the 40 slots busy.
        assert ideal_wall_s(20, 10, 4, 0.5, clients=5) == pytest.approx(2.0)

    def test_efficiency(self) -> None:
        assert efficiency(1.5, 3.0) == pytest.approx(0.5)
        assert efficiency(1.5, 1.5) == pytest.approx(1.0)
        with pytest.raises(ValueError):
            efficiency(1.5, 0.0)

    def test_rejects_impossible_configurations(self) -> None:
        with pytest.raises(ValueError):
            ideal(100, 0, 4, 0.5)
        with pytest.raises(ValueError):
            ideal(0, 10, 4, 0.5)


class TestAggregate:
    def test_median_and_range_over_repeats(self) -> None:
        runs = [{"avg_ms": 120.0, "errors": 0.0}, {"avg_ms": 100.0, "errors": 2.0}]
        runs.append({"avg_ms": 110.0, "errors": 1.0})
        agg = aggregate(runs)
        assert agg["avg_ms"] == Spread(110.0, 100.0, 120.0, 3)
        assert agg["errors"] == Spread(1.0, 0.0, 2.0, 3)

    def test_even_count_median_is_the_mean_of_the_middle_two(self) -> None:
        assert Spread.of([1.0, 10.0, 2.0, 3.0]) == Spread(2.5, 1.0, 10.0, 4)

    def test_nan_runs_are_skipped(self) -> None:
        assert Spread.of([math.nan, 4.0, 6.0]) == Spread(5.0, 4.0, 6.0, 2)
        assert Spread.of([math.nan]).n == 0

    def test_only_shared_figures_are_aggregated(self) -> None:
        agg = aggregate([{"a": 1.0, "b": 2.0}, {"a": 3.0}])
        assert set(agg) == {"a"}
        assert aggregate([]) == {}

    def test_summary_figures_feed_aggregation(self) -> None:
        fast = summarize([record(total_ms=100.0)], wall_s=1.0)
        slow = summarize([record(total_ms=300.0)], wall_s=2.0)
        agg = aggregate([fast.figures(), slow.figures()])
        assert agg["avg_ms"] == Spread(200.0, 100.0, 300.0, 2)
        assert agg["throughput_rps"] == Spread(0.75, 0.5, 1.0, 2)


class TestChurn:
    def test_stale_window_and_first_traffic(self) -> None:
        records = [
            record("backend3", start=9.0),  # before the kill: not stale
            record("backend3", start=10.5, ok=False, error="UNAVAILABLE"),
            record("backend3", start=11.199, lb_ms=1.0, ok=False, error="UNAVAILABLE"),
            record("backend1", start=11.0),
            record("backend11", start=12.8),
            record("backend11", start=13.5),
        ]
        events = [
            ChurnEvent("kill", "backend3", 10.0),
            ChurnEvent("start", "backend11", 12.0),
            ChurnEvent("start", "backend12", 12.0),
        ]
        figures = churn_figures(records, events)
        assert (figures.kills, figures.starts, figures.errors) == (1, 2, 2)
        assert figures.stale_picks == {"backend3": 2}
        # Last stale pick at 11.199 + 0.001 = 11.2.
        assert figures.stale_window_s["backend3"] == pytest.approx(1.2)
        assert figures.first_traffic_s["backend11"] == pytest.approx(0.801)
        assert figures.first_traffic_s["backend12"] is None
        assert figures.starved == 1
        assert math.isinf(figures.max_first_traffic_s)
        assert figures.max_stale_window_s == pytest.approx(1.2)

    def test_a_clean_kill_has_no_stale_window(self) -> None:
        figures = churn_figures(
            [record("backend1", start=1.0)], [ChurnEvent("kill", "backend1", 2.0)]
        )
        assert figures.stale_picks == {"backend1": 0}
        assert figures.max_stale_window_s == 0.0
        assert math.isnan(figures.max_first_traffic_s)

    def test_a_restart_under_the_same_id_ends_the_stale_window(self) -> None:
        records = [
            record("backend2", start=5.5, lb_ms=0.0),
            record("backend2", start=7.0, lb_ms=0.0),
        ]
        events = [ChurnEvent("kill", "backend2", 5.0), ChurnEvent("start", "backend2", 6.0)]
        figures = churn_figures(records, events)
        assert figures.stale_picks == {"backend2": 1}
        assert figures.stale_window_s["backend2"] == pytest.approx(0.5)
        assert figures.first_traffic_s["backend2"] == pytest.approx(1.0)
