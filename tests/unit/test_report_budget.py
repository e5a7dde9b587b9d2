"""The report budget: pace from the fleet size, shedding with coalescing, saturation first."""

from __future__ import annotations

import pytest

from lookaside.lb.report_budget import Pace, ReportBudget
from lookaside.model import LoadMetrics


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def budget(per_second: float, ttl: float = 30.0) -> tuple[ReportBudget, Clock]:
    clock = Clock()
    return ReportBudget(per_second, base_interval=1.0, base_gap=0.05, ttl=ttl, clock=clock), clock


def test_the_pace_slows_down_as_the_fleet_grows() -> None:
    limited, _ = budget(100)
    assert limited.told("b0") == Pace(1.0, 0.05)  # 1 backend / 100 per s: the base holds
    for i in range(1, 1000):
        limited.told(f"b{i}")
    assert limited.pace() == Pace(10.0, 10.0)  # 1,000 backends / 100 per s: one each 10 s
    limited.forget("b0")
    assert limited.pace().min_gap == pytest.approx(9.99)


def test_the_pace_never_costs_a_lease() -> None:
    limited, _ = budget(10, ttl=3.0)
    for i in range(100):
        limited.told(f"b{i}")
    assert limited.pace() == Pace(1.0, 1.0)  # 10 s would be wanted; a third of the TTL is the cap


def test_no_budget_means_every_report_and_the_base_pace() -> None:
    unlimited, _ = budget(0)
    for i in range(10000):
        unlimited.told(f"b{i}")
    assert unlimited.pace() == Pace(1.0, 0.05)
    assert all(unlimited.admit("b1", 0.5, LoadMetrics()) for _ in range(100))
    assert not unlimited.stale_pace("b1")


def test_reports_beyond_the_budget_are_held_and_the_latest_applied_later() -> None:
    limited, clock = budget(2)  # 2 reports/s, 2 backends: a gap of 1 s each
    limited.told("a")
    limited.told("b")
    assert limited.pace().min_gap == 1.0
    assert limited.admit("a", 0.1, LoadMetrics())  # tokens from the bucket
    assert limited.admit("b", 0.1, LoadMetrics())
    clock.now += 0.1
    assert not limited.admit("a", 0.2, LoadMetrics())  # bucket empty, "a" reported 0.1 s ago
    assert not limited.admit("a", 0.3, LoadMetrics(rps_fractional=3))
    assert limited.shed == 2
    assert limited.due() == []  # its gap is not over yet
    clock.now += 0.8
    ((backend_id, load, metrics),) = limited.due()
    assert (backend_id, load, metrics.rps_fractional) == ("a", 0.3, 3)  # the latest only
    assert limited.due() == []


def test_a_backend_on_its_gap_is_always_heard() -> None:
    limited, clock = budget(1)
    for name in ("a", "b", "c"):
        limited.told(name)
    limited.admit("a", 0.1, LoadMetrics())
    for _ in range(5):  # the bucket stays empty, yet every on-time report is applied
        clock.now += limited.pace().min_gap
        assert limited.admit("a", 0.1, LoadMetrics())


def test_saturation_and_recovery_are_never_shed() -> None:
    limited, clock = budget(1)
    limited.told("a")
    limited.told("b")
    limited.admit("a", 0.1, LoadMetrics())
    clock.now += 0.01
    assert not limited.admit("a", 0.5, LoadMetrics())
    assert limited.admit("a", 1.0, LoadMetrics())  # saturated: at once
    clock.now += 0.01
    assert limited.admit("a", 0.2, LoadMetrics())  # the first one after it, too
    clock.now += 0.01
    assert not limited.admit("a", 0.3, LoadMetrics())


def test_a_pace_far_from_what_a_backend_was_told_asks_for_a_new_stream() -> None:
    limited, _ = budget(10)
    limited.told("first")
    assert not limited.stale_pace("first")
    for i in range(100):
        limited.told(f"b{i}")  # the fleet grew a hundredfold
    assert limited.stale_pace("first")
    assert not limited.stale_pace("b99")
    limited.told("first")  # it renewed its registration and was told the new pace
    assert not limited.stale_pace("first")
