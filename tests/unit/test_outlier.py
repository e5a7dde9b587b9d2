"""Outlier detection: ejection on consecutive failures or a poor success rate, and return."""

from __future__ import annotations

import logging

import pytest

from lookaside.lb.outlier import OutlierConfig, OutlierDetector, OutlierEvent, OutlierEventKind

EJECTED, RETURNED = OutlierEventKind.EJECTED, OutlierEventKind.RETURNED


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def detector(
    members: int, service: str = "compute", **config: float
) -> tuple[OutlierDetector, FakeClock]:
    clock = FakeClock()
    found = OutlierDetector(OutlierConfig(**config), clock)  # type: ignore[arg-type]
    for i in range(members):
        found.add(service, f"b{i}")
    return found, clock


def kinds(events: list[OutlierEvent]) -> list[tuple[str, OutlierEventKind]]:
    return [(e.backend_id, e.kind) for e in events]


def test_five_consecutive_failures_eject() -> None:
    od, _ = detector(10)
    assert od.record("compute", "b3", finished=3, failed=3) is None
    event = od.record("compute", "b3", finished=2, failed=2)
    assert event is not None and event.kind is EJECTED and event.reason == "consecutive_failures"
    assert event.duration == 30.0
    assert od.ejected("compute") == {"b3"}
    assert od.is_ejected("compute", "b3") and not od.is_ejected("compute", "b2")


def test_a_success_ends_the_run_of_failures() -> None:
    od, _ = detector(10)
    od.record("compute", "b1", finished=4, failed=4)
    od.record("compute", "b1", finished=10, failed=9)  # one call succeeded
    assert od.record("compute", "b1", finished=4, failed=4) is None
    assert od.ejected("compute") == frozenset()
    assert od.record("compute", "b1", finished=1, failed=1) is not None  # 5 in a row now


def test_ejected_backend_returns_after_its_time() -> None:
    od, clock = detector(10)
    od.record("compute", "b0", 5, 5)
    clock.now += 29.9
    assert [e for e in od.sweep() if e.kind is RETURNED] == []
    clock.now += 0.1
    assert kinds([e for e in od.sweep() if e.kind is RETURNED]) == [("b0", RETURNED)]
    assert od.ejected("compute") == frozenset()


def test_repeated_ejections_last_longer_and_are_forgiven_over_time() -> None:
    od, clock = detector(10, max_ejection_time=75)
    durations = []
    for _ in range(4):
        event = od.record("compute", "b0", 5, 5)
        assert event is not None
        durations.append(event.duration)
        clock.now += event.duration
        od.sweep()
    assert durations == [30.0, 60.0, 75.0, 75.0]  # base x times ejected, capped
    # Each interval (10 s) out of ejection lowers the multiplier by one.
    for _ in range(4):
        clock.now += 10
        od.sweep()
    event = od.record("compute", "b0", 5, 5)
    assert event is not None and event.duration == 30.0


@pytest.mark.parametrize(
    ("members", "allowed"), [(1, 0), (2, 1), (5, 1), (10, 1), (19, 1), (20, 2), (35, 3)]
)
def test_max_ejection_share(members: int, allowed: int) -> None:
    od, _ = detector(members)
    assert od.max_ejected(members) == allowed
    for i in range(members):
        od.record("compute", f"b{i}", 5, 5)
    assert len(od.ejected("compute")) == allowed


def test_the_only_backend_is_never_ejected() -> None:
    od, _ = detector(1, max_ejection_percent=100)
    assert od.record("compute", "b0", 50, 50) is None
    assert od.max_ejected(1) == 0


def test_never_everyone_even_at_100_percent() -> None:
    od, _ = detector(3, max_ejection_percent=100)
    for i in range(3):
        od.record("compute", f"b{i}", 5, 5)
    assert len(od.ejected("compute")) == 2


def feed_interval(od: OutlierDetector, failures: dict[str, int], calls: int = 200) -> None:
    for backend_id, failed in failures.items():
        od.record("compute", backend_id, finished=calls, failed=failed)


def test_success_rate_far_below_the_others_ejects_at_the_interval() -> None:
    od, clock = detector(6, consecutive_failures=0)
    feed_interval(od, {"b0": 2, "b1": 1, "b2": 3, "b3": 2, "b4": 1, "b5": 100})
    assert od.sweep() == []  # not an interval yet
    clock.now += 10
    events = od.sweep()
    assert kinds(events) == [("b5", EJECTED)]
    assert events[0].reason == "success_rate"
    # Counts are per interval: the next interval starts clean.
    feed_interval(od, {f"b{i}": 1 for i in range(5)})
    clock.now += 10
    assert od.sweep() == []


def test_success_rate_needs_volume_and_enough_hosts() -> None:
    od, clock = detector(6, consecutive_failures=0)
    feed_interval(od, {"b0": 0, "b1": 0, "b2": 0, "b3": 0, "b4": 0, "b5": 50}, calls=99)
    clock.now += 10
    assert od.sweep() == []  # below 100 calls each
    od2, clock2 = detector(4, consecutive_failures=0)
    feed_interval(od2, {"b0": 0, "b1": 0, "b2": 0, "b3": 100})
    clock2.now += 10
    assert od2.sweep() == []  # fewer than 5 hosts with volume


def test_equal_success_rates_eject_nobody() -> None:
    od, clock = detector(6, consecutive_failures=0)
    feed_interval(od, {f"b{i}": 20 for i in range(6)})
    clock.now += 10
    assert od.sweep() == []


def test_success_rate_can_be_turned_off() -> None:
    od, clock = detector(6, consecutive_failures=0, success_rate_enabled=False)
    feed_interval(od, {"b0": 0, "b1": 0, "b2": 0, "b3": 0, "b4": 0, "b5": 150})
    clock.now += 10
    assert od.sweep() == []


def test_services_are_independent() -> None:
    od, _ = detector(3)
    od.add("other", "x0")
    od.add("other", "x1")
    od.record("other", "x0", 5, 5)
    assert od.ejected("other") == {"x0"} and od.ejected("compute") == frozenset()


def test_departed_and_unknown_backends_are_ignored() -> None:
    od, _ = detector(3)
    od.record("compute", "b0", 5, 5)
    od.forget("compute", "b0")
    assert od.ejected("compute") == frozenset()
    assert od.record("compute", "b0", 5, 5) is None  # stale stats after it left
    assert od.record("compute", "nobody", 5, 5) is None
    assert od.record("nowhere", "b1", 5, 5) is None
    od.add("compute", "b0")  # rejoins afresh
    assert od.record("compute", "b0", 4, 4) is None


def test_odd_counts_are_tolerated() -> None:
    od, _ = detector(3)
    assert od.record("compute", "b0", 0, 0) is None
    assert od.record("compute", "b0", -3, 2) is None
    assert od.record("compute", "b0", 2, 9) is None  # failed clipped to finished
    assert od.record("compute", "b0", 3, 3) is not None


def test_one_info_line_per_ejection_and_return(caplog: pytest.LogCaptureFixture) -> None:
    od, clock = detector(10)
    with caplog.at_level(logging.INFO, logger="lookaside.lb.outlier"):
        od.record("compute", "b7", 5, 5)
        od.record("compute", "b7", 5, 5)  # already ejected: nothing new
        clock.now += 30
        od.sweep()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 2
    assert (
        "ejected" in lines[0]
        and "backend=b7" in lines[0]
        and "reason=consecutive_failures" in lines[0]
    )
    assert "returned" in lines[1] and "backend=b7" in lines[1]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        OutlierConfig(max_ejection_percent=150)
    with pytest.raises(ValueError):
        OutlierConfig(interval=0)
