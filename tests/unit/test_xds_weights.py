"""xDS weights: per policy, from load figures, smoothed, bounded, integers; damping."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lookaside.lb.xds.config import XdsConfig
from lookaside.lb.xds.weights import WeightEstimator, to_integers, worth_pushing
from lookaside.model import Endpoint, LoadMetrics


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
    assert estimator.weights("round_robin", endpoints) == {"a": 100, "b": 100}
    assert estimator.weights("pick_first", endpoints) == {"a": 100, "b": 100}


def test_ring_hash_uses_the_static_weights() -> None:
    estimator = WeightEstimator(XdsConfig(resolution=70))
    endpoints = (backend("a", weight=1), backend("b", weight=2), backend("c", weight=7))
    assert estimator.weights("ring_hash", endpoints) == {"a": 10, "b": 20, "c": 70}


def test_least_load_follows_throughput_per_unit_of_load() -> None:
    """Same in-flight per worker at a quarter of the rps = four times slower: a quarter of the weight."""
    estimator = WeightEstimator(XdsConfig(smoothing=0))
    endpoints = (
        backend("fast1", rps=100, load=1.0, at=1),
        backend("fast2", rps=100, load=1.0, at=1),
        backend("slow", rps=25, load=1.0, at=1),
    )
    assert estimator.weights("least_load", endpoints) == {"fast1": 100, "fast2": 100, "slow": 25}
    assert estimator.weights("p2c", endpoints) == {"fast1": 100, "fast2": 100, "slow": 25}


def test_a_backend_without_figures_gets_the_mean_and_static_weight_multiplies() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=0))
    endpoints = (
        backend("a", rps=100, load=1.0, at=1),
        backend("b", rps=50, load=1.0, at=1),
        backend("new", weight=2),  # joined, no report yet: mean (75) x static 2
    )
    assert estimator.weights("least_load", endpoints) == {"a": 67, "b": 33, "new": 100}


def test_with_fewer_than_two_figures_capacity_times_static_weight() -> None:
    estimator = WeightEstimator(XdsConfig())
    endpoints = (backend("a", capacity=4, rps=10, load=1, at=1), backend("b", capacity=8))
    assert estimator.weights("least_load", endpoints) == {"a": 50, "b": 100}


def test_weights_are_bounded_to_max_ratio_of_the_mean() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=0, max_ratio=2, resolution=1000))
    endpoints = (
        backend("a", rps=1000, load=1, at=1),
        backend("b", rps=10, load=1, at=1),
        backend("c", rps=10, load=1, at=1),
    )
    # mean 340: a is capped at 680, b and c raised to 170
    assert estimator.weights("least_load", endpoints) == {"a": 1000, "b": 250, "c": 250}


def test_a58_weights_for_weighted_round_robin() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=0))
    endpoints = (
        backend("a", rps=100, util=0.5, at=1),  # 200
        backend("b", rps=50, util=0.5, at=1),  # 100
    )
    assert estimator.weights("weighted_round_robin", endpoints) == {"a": 100, "b": 50}


def test_smoothing_moves_part_way_towards_a_new_figure() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=1.0, resolution=1000))
    a, b = backend("a", rps=100, load=1, at=1), backend("b", rps=100, load=1, at=1)
    assert estimator.weights("least_load", (a, b)) == {"a": 1000, "b": 1000}
    # b's throughput halves, reported one smoothing period later: it moves 63 % of the way.
    a2, b2 = (
        replace(a, reported_at=2),
        replace(b, reported_at=2, metrics=LoadMetrics(rps_fractional=50)),
    )
    weights = estimator.weights("least_load", (a2, b2))
    assert weights["b"] == pytest.approx(1000 * (100 - 0.632 * 50) / 100, abs=2)
    # The same report seen again changes nothing.
    assert estimator.weights("least_load", (a2, b2)) == weights


def test_a_rejoined_backend_starts_afresh() -> None:
    estimator = WeightEstimator(XdsConfig(smoothing=10))
    a, b = backend("a", rps=100, load=1, at=1), backend("b", rps=100, load=1, at=1)
    estimator.weights("least_load", (a, b))
    b_again = replace(b, registered_at=5, reported_at=6, metrics=LoadMetrics(rps_fractional=25))
    assert estimator.weights("least_load", (a, b_again)) == {"a": 100, "b": 25}


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
