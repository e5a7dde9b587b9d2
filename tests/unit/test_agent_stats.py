"""The agent's load figures from its call counters, on an injected clock (no sockets)."""

from __future__ import annotations

import pytest

from lookaside.backend.call_stats import RATE_WINDOW, CallStats, LoadMeter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_latency_is_an_ewma_of_finished_calls() -> None:
    clock = Clock()
    stats = CallStats(clock, alpha=0.5)
    for seconds in (0.010, 0.030):
        started = stats.start()
        clock.now += seconds
        stats.finish(started, ok=True)
    assert stats.latency_ms == pytest.approx(20.0)  # 10, then 10 + 0.5 * (30 - 10)
    assert (stats.in_flight, stats.finished, stats.failed) == (0, 2, 0)


def test_rates_utilisation_and_in_flight_over_the_window() -> None:
    clock = Clock()
    stats = CallStats(clock)
    meter = LoadMeter(stats, capacity=2, clock=clock, cpu_clock=lambda: 0.0)
    for ok in (True, True, False, True):
        started = stats.start()
        clock.now += 0.25  # one call at a time, back to back: 1 s busy of 2 s capacity
        stats.finish(started, ok)
    held = stats.start()  # one call still running
    reading = meter.measure()
    assert reading.rps == pytest.approx(4.0)
    assert reading.eps == pytest.approx(1.0)
    assert reading.utilization == pytest.approx(0.5)
    assert reading.requests_in_flight == 1
    assert reading.load == pytest.approx(0.5)
    assert reading.latency_ms > 0
    clock.now += RATE_WINDOW * 3  # quiet: rates fall to zero, the running call still counts
    meter.measure()
    later = meter.measure()
    assert (later.rps, later.eps) == (0.0, 0.0)
    assert later.utilization == pytest.approx(0.5)
    stats.finish(held, ok=True)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        CallStats(alpha=0)
    with pytest.raises(ValueError, match="capacity"):
        LoadMeter(CallStats(), capacity=0)
