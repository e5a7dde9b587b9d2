"""xDS weights: per policy, from load figures, smoothed, bounded, integers; damping."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lookaside.lb.xds.config import XdsConfig
from lookaside.lb.xds.weights import WeightEstimator, to_integers, worth_pushing
from lookaside.model import Endpoint, LoadMetrics
from tests.unit.xds_fleet import Fleet


def backend(
    backend_id: str, *, rps: float = 0.0, load: float = 0.0, at: float = 0.0, **fields: float
) -> Endpoint:
    return Endpoint(
        backend_id,
        "127.0.0.1",
        9000 + len(backend_id),
        load=load,
        reported_at=at,
        metrics=LoadMetrics(rps_fractional=rps, application_utilization=fields.pop("util", 0.0)),
        **fields,  # type: ignore[arg-type]
    )


def test_round_robin_weighs_everyone_the_same_whatever_the_load() -> None:
    estimator = WeightEstimator(XdsConfig())
    endpoints = (backend("a", rps=100, load=0.5, at=1), backend("b", rps=10, load=3, at=1))
    assert estimator.weights("round_robin", endpoints, 1) == {"a": 100, "b": 100}
    assert estimator.weights("pick_first", endpoints, 1) == {"a": 100, "b": 100}


def test_ring_hash_uses_the_static_weights() -> None:
    estimator = WeightEstimator(XdsConfig(resolution=70))
    endpoints = (backend("a", weight=1), backend("b", weight=2), backend("c", weight=7))
    assert estimator.weights("ring_hash", endpoints, 0) == {"a": 10, "b": 20, "c": 70}


def test_least_load_starts_at_capacity_times_static_weight() -> None:
    estimator = WeightEstimator(XdsConfig())
    endpoints = (backend("a", capacity=4), backend("b", capacity=8), backend("c", weight=4))
    assert estimator.weights("least_load", endpoints, 0) == {"a": 50, "b": 100, "c": 50}


def simulate(
    latency: dict[str, float],
    static: dict[str, float],
    seconds: float,
    config: XdsConfig,
    in_flight: float = 12.0,
    workers: int = 8,
) -> dict[str, float]:
    """Closed-loop clients: shares follow the weights, in flight = rate x share x latency.

    Every 0.1 s each backend reports its load (in flight per worker); returns the shares.
    """
    estimator = WeightEstimator(config)
    ids = list(latency)
    endpoints = tuple(backend(i, capacity=workers, weight=static[i]) for i in ids)
    weights = estimator.weights("least_load", endpoints, 0.0)
    now = 0.0
    while now < seconds:
        now += 0.1
        total = sum(weights.values())
        share = {i: weights[i] / total for i in ids}
        rate = in_flight / sum(share[i] * latency[i] for i in ids)
        endpoints = tuple(
            replace(e, load=rate * share[e.id] * latency[e.id] / workers, reported_at=now)
            for e in endpoints
        )
        weights = estimator.weights("least_load", endpoints, now)
    total = sum(weights.values())
    return {i: weights[i] / total for i in ids}


def test_least_load_weights_settle_where_loads_are_equal() -> None:
    """2 fast (40 ms) and 1 slow (160 ms): equal load means the slow one gets 1/9."""
    shares = simulate(
        {"fast1": 0.04, "fast2": 0.04, "slow": 0.16},
        dict.fromkeys(("fast1", "fast2", "slow"), 1.0),
        30,
        XdsConfig(),
    )
    assert shares["slow"] == pytest.approx(1 / 9, abs=0.02)
    assert shares["fast1"] == pytest.approx(shares["fast2"], abs=0.02)


def test_least_load_with_equal_backends_follows_the_static_weights() -> None:
    shares = simulate(dict.fromkeys("abc", 0.02), {"a": 1, "b": 2, "c": 7}, 30, XdsConfig())
    assert shares == pytest.approx({"a": 0.1, "b": 0.2, "c": 0.7}, abs=0.02)


def test_least_load_keeps_weights_while_idle() -> None:
    estimator = WeightEstimator(XdsConfig())
    endpoints = (backend("a", load=0, at=1), backend("b", load=0.01, at=1))
    assert estimator.weights("least_load", endpoints, 1) == {"a": 100, "b": 100}
    later = tuple(replace(e, reported_at=5) for e in endpoints)
    weights = estimator.weights("least_load", later, 5)
    assert weights["b"] >= 80  # 0.01 of noise moves it little


def test_least_load_bounds_weights_to_max_ratio_of_the_mean() -> None:
    config = XdsConfig(max_ratio=2, adapt_period=0.1)
    shares = simulate(
        dict.fromkeys(("a", "b"), 0.02) | {"slow": 10.0},
        dict.fromkeys(("a", "b", "slow"), 1.0),
        10,
        config,
    )
    # Unbounded, the slow one would fall to almost nothing (its load is 500 times the
    # others'); bounded, it keeps about half the mean weight.
    assert shares["slow"] > 0.12


def test_a_joining_backend_gets_the_average_weight_per_unit() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=0, adapt_period=1))
    a, b = backend("a", load=1.0, at=1), backend("b", load=0.0, at=1)
    estimator.weights("least_load", (a, b), 1)
    weights = estimator.weights(
        "least_load", (replace(a, reported_at=2), replace(b, reported_at=2)), 2
    )
    assert weights["a"] < weights["b"]
    new = backend("new", weight=2)
    weights = estimator.weights("least_load", (a, b, new), 2)
    assert weights["new"] == pytest.approx(weights["a"] + weights["b"], abs=2)


def test_a58_weights_for_weighted_round_robin() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=0))
    endpoints = (
        backend("a", rps=100, util=0.5, at=1),  # 200
        backend("b", rps=50, util=0.5, at=1),  # 100
        backend("new", weight=3),  # no report yet: the mean (150) x static 3
    )
    assert estimator.weights("weighted_round_robin", endpoints, 1) == {"a": 44, "b": 22, "new": 100}


def test_a58_with_fewer_than_two_figures_is_capacity_times_static() -> None:
    estimator = WeightEstimator(XdsConfig())
    endpoints = (backend("a", capacity=4, rps=10, util=0.1, at=1), backend("b", capacity=8))
    assert estimator.weights("weighted_round_robin", endpoints, 1) == {"a": 50, "b": 100}


def test_smoothing_moves_part_way_towards_a_new_figure() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=1.0, resolution=1000))
    a, b = backend("a", rps=100, util=1, at=1), backend("b", rps=100, util=1, at=1)
    assert estimator.weights("weighted_round_robin", (a, b), 1) == {"a": 1000, "b": 1000}
    # b's throughput halves, reported one smoothing period later: it moves 63 % of the way.
    a2 = replace(a, reported_at=2)
    b2 = replace(
        b, reported_at=2, metrics=LoadMetrics(rps_fractional=50, application_utilization=1)
    )
    weights = estimator.weights("weighted_round_robin", (a2, b2), 2)
    assert weights["b"] == pytest.approx(1000 * (100 - 0.632 * 50) / 100, abs=2)
    # The same report seen again changes nothing.
    assert estimator.weights("weighted_round_robin", (a2, b2), 3) == weights


def test_a_rejoined_backend_starts_afresh() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=10))
    a, b = backend("a", rps=100, util=1, at=1), backend("b", rps=100, util=1, at=1)
    estimator.weights("weighted_round_robin", (a, b), 1)
    b_again = replace(
        b,
        registered_at=5,
        reported_at=6,
        metrics=LoadMetrics(rps_fractional=25, application_utilization=1),
    )
    assert estimator.weights("weighted_round_robin", (a, b_again), 6) == {"a": 100, "b": 25}


def test_to_integers_never_gives_zero() -> None:
    assert to_integers([1000.0, 1.0], XdsConfig(resolution=100)) == [100, 1]
    assert to_integers([], XdsConfig()) == []


def test_damping_pushes_membership_and_big_moves_only() -> None:
    old = {"a": 100, "b": 100}
    assert worth_pushing(old, {"a": 100}, threshold=0.1)
    assert worth_pushing(old, {"a": 100, "b": 100, "c": 1}, threshold=0.1)
    assert not worth_pushing(old, {"a": 100, "b": 90}, threshold=0.1)  # b: 0.5 -> 0.47
    assert worth_pushing(old, {"a": 100, "b": 70}, threshold=0.1)  # b: 0.5 -> 0.41
    assert worth_pushing(old, {"a": 100, "b": 90}, threshold=0.0)


def rated(backend_id: str, rps: float, load: float, at: float, workers: int = 2) -> Endpoint:
    return backend(backend_id, rps=rps, load=load, at=at, capacity=workers)


def test_least_load_weighs_each_backend_by_its_service_rate() -> None:
    """calls/s ÷ busy share: a backend serving 10/s half busy serves 20/s fully busy."""
    estimator = WeightEstimator(XdsConfig(smoothing=0, rate_smoothing=0))
    for at in (1, 2):  # the busy share is the load held since the previous report
        endpoints = (rated("fast", 40, 0.5, at), rated("slow", 10, 0.5, at))
        weights = estimator.weights("least_load", endpoints, at)
    assert weights == {"fast": 100, "slow": 25}


def test_service_rates_are_known_within_a_second_of_traffic_after_a_long_idle_spell() -> None:
    """The average covers at most the time a backend has served, so idle time does not dilute it."""
    estimator = WeightEstimator(XdsConfig(rate_smoothing=10))
    for at in range(1, 60):  # a minute of idle reports
        estimator.weights("least_load", (rated("fast", 0, 0, at), rated("slow", 0, 0, at)), at)
    for step in range(1, 11):  # then a second of traffic, reported every 0.1 s
        at = 60 + step / 10
        endpoints = (rated("fast", 40, 0.5, at), rated("slow", 10, 0.5, at))
        weights = estimator.weights("least_load", endpoints, at)
    assert weights == {"fast": 100, "slow": 25}


def test_an_idle_backend_gets_the_mean_service_rate_per_worker() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=0, rate_smoothing=0))
    for at in (1, 2):
        endpoints = (
            rated("a", 40, 0.5, at),
            rated("b", 20, 0.5, at),
            rated("idle", 0.1, 0.01, at, workers=4),  # too idle to measure: 30/s per worker
        )
        weights = estimator.weights("least_load", endpoints, at)
    assert weights == {"a": 67, "b": 33, "idle": 100}  # 80, 40 and 4 x 30 calls/s


def test_a_queueing_backend_is_cut_until_it_drains() -> None:
    """Loads above one task per worker weigh ``load ** -queue_gain``; no memory."""
    estimator = WeightEstimator(XdsConfig(smoothing=0, rate_smoothing=0, queue_gain=0.5))
    steady = (rated("a", 20, 1.0, 1), rated("b", 20, 1.0, 1), rated("c", 20, 1.0, 1))
    estimator.weights("least_load", steady, 1)
    queued = (rated("a", 20, 1.0, 2), rated("b", 20, 1.0, 2), rated("c", 20, 7.0, 2))
    weights = estimator.weights("least_load", queued, 2)
    assert weights["a"] == weights["b"] == 100
    assert weights["c"] == pytest.approx(100 * (1 / 7) ** 0.5, abs=1)
    drained = (rated("a", 20, 0.5, 3), rated("b", 20, 0.5, 3), rated("c", 20, 0.5, 3))
    estimator.weights("least_load", drained, 3)
    assert estimator.weights("least_load", drained, 4) == {"a": 100, "b": 100, "c": 100}


HETEROGENEOUS = {f"fast{i}": 0.04 for i in range(4)} | {"slow0": 0.16, "slow1": 0.16}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_service_rate_weights_hold_steady_on_a_heterogeneous_fleet(seed: int) -> None:
    """The lab's heterogeneous run, simulated: 4 x 40 ms + 2 x 160 ms, 2 workers, Poisson 70 %.

    Equal load gives each slow backend 1/18 of the weight; after the first
    seconds its share stays near that at every push (no swing), and no call
    queues behind a slow backend for long.
    """
    run = Fleet(HETEROGENEOUS, seed=seed).run(20)
    shares = run.shares("slow0", since=6)
    assert min(shares) > 0.03 and max(shares) < 0.09
    assert run.swing(["slow0"], since=6) < 2.0
    assert run.percentile(99, since=5) < 0.5


def test_the_load_only_integral_controller_swings_where_service_rates_do_not() -> None:
    """Without reported rates (the fallback) the same fleet's slow share swings 3-6x."""
    swings = [
        Fleet(HETEROGENEOUS, seed=seed, report_rates=False).run(20).swing(["slow0"], since=6)
        for seed in (1, 2, 3)
    ]
    assert max(swings) > 2.5
