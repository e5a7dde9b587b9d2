"""``weighted_round_robin`` (gRFC A58): weights from reports, blackout, expiry, mean fill-in."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

from lookaside.model import Endpoint, LoadMetrics, PickRequest
from lookaside.policies import POLICIES, Snapshot, create
from lookaside.policies.weighted_round_robin import (
    WeightedRoundRobin,
    WrrConfig,
    reported_weight,
)

CHI2_999 = {2: 13.82, 3: 16.27}


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def backend(name: str, registered_at: float = 0.0, weight: float = 1.0) -> Endpoint:
    return Endpoint(
        id=name, address="10.0.0.1", port=5000, registered_at=registered_at, weight=weight
    )


def report(
    endpoint: Endpoint, at: float, qps: float, utilization: float, eps: float = 0.0
) -> Endpoint:
    metrics = LoadMetrics(application_utilization=utilization, rps_fractional=qps, eps=eps)
    return replace(endpoint, reported_at=at, metrics=metrics)


def wrr(clock: FakeClock, **config: float) -> WeightedRoundRobin:
    policy = create("weighted_round_robin", random.Random(7), clock, config=WrrConfig(**config))
    assert isinstance(policy, WeightedRoundRobin)
    return policy


def test_registered_and_rebuilt_on_reports() -> None:
    assert POLICIES["weighted_round_robin"] is WeightedRoundRobin
    assert WeightedRoundRobin.uses_load
    assert isinstance(create("weighted_round_robin"), WeightedRoundRobin)


def test_weight_formula_of_a58() -> None:
    e = backend("a")
    assert reported_weight(report(e, 1, qps=100, utilization=0.5), 1.0) == pytest.approx(200)
    # eps/qps * penalty is added to utilization: 100 / (0.5 + 0.1 * 1.0)
    with_errors = report(e, 1, qps=100, utilization=0.5, eps=10)
    assert reported_weight(with_errors, 1.0) == pytest.approx(100 / 0.6)
    assert reported_weight(with_errors, 0.0) == pytest.approx(200)
    # cpu_utilization stands in when application_utilization is not reported.
    cpu_only = replace(e, metrics=LoadMetrics(cpu_utilization=0.25, rps_fractional=50))
    assert reported_weight(cpu_only, 1.0) == pytest.approx(200)
    # Nothing usable: no qps, or no utilization.
    assert reported_weight(report(e, 1, qps=0, utilization=0.5), 1.0) == 0
    assert reported_weight(report(e, 1, qps=100, utilization=0), 1.0) == 0
    assert reported_weight(e, 1.0) == 0


def test_blackout_then_picks_follow_reported_weights() -> None:
    clock = FakeClock()
    policy = wrr(clock, blackout_period=10)
    members = [backend("a"), backend("b"), backend("c")]
    speeds = {"a": 0.25, "b": 0.5, "c": 0.5}  # a does the same qps at half the utilization

    def reports(at: float) -> tuple[Endpoint, ...]:
        return tuple(report(m, at, qps=100, utilization=speeds[m.id]) for m in members)

    clock.now = 1.0
    policy.build(Snapshot(reports(1.0)))
    assert policy.weights == {"a": 1.0, "b": 1.0, "c": 1.0}  # in blackout: round robin
    clock.now = 10.9
    policy.build(Snapshot(reports(10.9)))
    assert len(set(policy.weights.values())) == 1  # 9.9 s since the first report: still out
    clock.now = 11.0
    picker = policy.build(Snapshot(reports(11.0)))
    assert policy.weights == {"a": 400.0, "b": 200.0, "c": 200.0}
    picks = 4000
    counts = Counter(picker.pick(PickRequest()).id for _ in range(picks))  # type: ignore[union-attr]
    expected = {"a": picks / 2, "b": picks / 4, "c": picks / 4}
    chi2 = sum((counts[k] - e) ** 2 / e for k, e in expected.items())
    assert chi2 < CHI2_999[2]


def test_blackout_counts_from_the_first_non_zero_report_not_from_join() -> None:
    clock = FakeClock()
    policy = wrr(clock, blackout_period=10)
    a, b = backend("a"), backend("b")
    clock.now = 5.0  # joined at 0, idle reports until 5
    policy.build(Snapshot((report(a, 4, qps=0, utilization=0), report(b, 4, 0, 0))))
    policy.build(Snapshot((report(a, 5, qps=100, utilization=0.5), report(b, 5, 100, 1.0))))
    clock.now = 14.0
    policy.build(Snapshot((report(a, 14, qps=100, utilization=0.5), report(b, 14, 100, 1.0))))
    assert policy.weights["a"] == policy.weights["b"]
    clock.now = 15.0
    policy.build(Snapshot((report(a, 15, qps=100, utilization=0.5), report(b, 15, 100, 1.0))))
    assert policy.weights == {"a": 200.0, "b": 100.0}


def test_rejoin_starts_a_new_blackout() -> None:
    clock = FakeClock(20.0)
    policy = wrr(clock, blackout_period=10)
    a, b = backend("a"), backend("b")
    policy.build(Snapshot((report(a, 1, 100, 0.5), report(b, 1, 100, 1.0))))
    policy.build(Snapshot((report(a, 20, 100, 0.5), report(b, 20, 100, 1.0))))
    assert policy.weights == {"a": 200.0, "b": 100.0}
    # a restarts: registered again at 21 and reports at 22; its old weight must not be used.
    clock.now = 22.0
    a2 = backend("a", registered_at=21.0)
    policy.build(Snapshot((report(a2, 22, 100, 0.5), report(b, 22, 100, 1.0))))
    assert policy.weights == {"a": 1.0, "b": 1.0}  # one usable weight: all equal
    clock.now = 32.0
    policy.build(Snapshot((report(a2, 32, 100, 0.5), report(b, 32, 100, 1.0))))
    assert policy.weights == {"a": 200.0, "b": 100.0}


def test_weights_expire_when_reports_stop_saying_anything() -> None:
    clock = FakeClock()
    policy = wrr(clock, blackout_period=10, weight_expiration_period=30)
    a, b, c = backend("a"), backend("b"), backend("c")
    policy.build(Snapshot((report(a, 0, 100, 0.5), report(b, 0, 100, 1.0), report(c, 0, 100, 1.0))))
    clock.now = 20.0
    policy.build(
        Snapshot((report(a, 20, 100, 0.5), report(b, 20, 100, 1.0), report(c, 20, 100, 1.0)))
    )
    assert policy.weights == {"a": 200.0, "b": 100.0, "c": 100.0}
    # a goes idle (qps 0: no new weight); b and c keep reporting.
    clock.now = 49.9
    policy.build(Snapshot((report(a, 49, 0, 0), report(b, 49, 100, 1.0), report(c, 49, 100, 1.0))))
    assert policy.weights["a"] == 200.0  # 29.9 s since its last non-zero report
    clock.now = 50.0
    policy.build(Snapshot((report(a, 50, 0, 0), report(b, 50, 100, 1.0), report(c, 50, 100, 1.0))))
    assert policy.weights == {"a": 100.0, "b": 100.0, "c": 100.0}  # expired: the mean
    # Fresh reports again: a blackout applies before its weight counts.
    clock.now = 55.0
    policy.build(
        Snapshot((report(a, 55, 100, 0.25), report(b, 55, 100, 1.0), report(c, 55, 100, 1.0)))
    )
    assert policy.weights["a"] == 100.0
    clock.now = 65.0
    policy.build(
        Snapshot((report(a, 65, 100, 0.25), report(b, 65, 100, 1.0), report(c, 65, 100, 1.0)))
    )
    assert policy.weights["a"] == 400.0


def test_backends_without_weight_get_the_mean() -> None:
    clock = FakeClock(100.0)
    policy = wrr(clock, blackout_period=0)
    members = (report(backend("a"), 99, 100, 0.5), report(backend("b"), 99, 100, 1.0), backend("c"))
    policy.build(Snapshot(members))
    assert policy.weights == {"a": 200.0, "b": 100.0, "c": 150.0}


def test_fewer_than_two_weights_means_round_robin_by_static_weight() -> None:
    clock = FakeClock(100.0)
    policy = wrr(clock, blackout_period=0)
    picker = policy.build(Snapshot((report(backend("a"), 99, 100, 0.5), backend("b", weight=3.0))))
    assert policy.weights == {"a": 1.0, "b": 3.0}
    counts = Counter(picker.pick(PickRequest()).id for _ in range(400))  # type: ignore[union-attr]
    assert counts == {"a": 100, "b": 300}


def test_static_weight_multiplies_the_reported_weight() -> None:
    clock = FakeClock(100.0)
    policy = wrr(clock, blackout_period=0)
    members = (report(backend("a", weight=2.0), 99, 100, 1.0), report(backend("b"), 99, 100, 1.0))
    policy.build(Snapshot(members))
    assert policy.weights == {"a": 200.0, "b": 100.0}


def test_weights_are_bounded_relative_to_the_mean() -> None:
    clock = FakeClock(100.0)
    policy = wrr(clock, blackout_period=0, max_weight_ratio=10, min_weight_ratio=0.01)
    # One backend claims 10 million (1000 qps at 0.01 % utilization), eleven claim 100.
    normal = [report(backend(f"n{i}"), 99, 100, 1.0) for i in range(11)]
    members = (report(backend("wild"), 99, 1000, 0.0001), *normal)
    policy.build(Snapshot(members))
    mean = (1000 / 0.0001 + 11 * 100) / 12
    assert policy.weights["wild"] == pytest.approx(10 * mean)  # capped
    assert policy.weights["n0"] == pytest.approx(0.01 * mean)  # raised from 100


def test_excluded_backends_are_skipped() -> None:
    clock = FakeClock(100.0)
    policy = wrr(clock, blackout_period=0)
    members = tuple(report(backend(n), 99, 100, u) for n, u in (("a", 0.1), ("b", 1.0), ("c", 1.0)))
    picker = policy.build(Snapshot(members))
    request = PickRequest(exclude_ids=frozenset({"a"}))
    counts = Counter(picker.pick(request).id for _ in range(100))  # type: ignore[union-attr]
    assert counts == {"b": 50, "c": 50}
    assert picker.pick(PickRequest(exclude_ids=frozenset({"a", "b", "c"}))) is None


def test_backends_that_leave_are_forgotten() -> None:
    clock = FakeClock(100.0)
    policy = wrr(clock, blackout_period=10)
    a, b = backend("a"), backend("b")
    policy.build(Snapshot((report(a, 50, 100, 0.5), report(b, 50, 100, 1.0))))
    policy.build(Snapshot((report(b, 100, 100, 1.0),)))  # a left
    clock.now = 101.0
    policy.build(Snapshot((report(a, 101, 100, 0.5), report(b, 101, 100, 1.0))))  # a is back
    assert policy.weights == {"a": 1.0, "b": 1.0}  # a is in a fresh blackout


def test_uses_snapshot_time_without_an_injected_clock() -> None:
    policy = create("weighted_round_robin", random.Random(1), config=WrrConfig(blackout_period=5))
    members = (report(backend("a"), 1, 100, 0.5), report(backend("b"), 1, 100, 1.0))
    policy.build(Snapshot(members, now=2.0))
    later = (report(backend("a"), 7, 100, 0.5), report(backend("b"), 7, 100, 1.0))
    policy.build(Snapshot(later, now=7.0))
    assert isinstance(policy, WeightedRoundRobin)
    assert policy.weights == {"a": 200.0, "b": 100.0}


@pytest.mark.parametrize(
    "bad",
    [
        {"blackout_period": -1},
        {"weight_expiration_period": 0},
        {"error_utilization_penalty": -0.5},
        {"max_weight_ratio": 0.5},
        {"min_weight_ratio": 0},
    ],
)
def test_config_is_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        WrrConfig(**bad)


def test_create_rejects_unknown_options() -> None:
    with pytest.raises(ValueError, match="bad options"):
        create("weighted_round_robin", blackout=3)
    with pytest.raises(ValueError, match="bad options"):
        create("round_robin", config=WrrConfig())
