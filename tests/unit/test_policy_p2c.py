"""``p2c``: two distinct candidates, the less loaded wins, bursts spread out."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lookaside.model import Endpoint, PickRequest
from lookaside.policies import POLICIES, PickTracker, Snapshot, create
from lookaside.policies.p2c import PowerOfTwoChoices

CHI2_999 = {3: 16.27, 4: 18.47}


def backends(n: int, capacity: int = 1, loads: list[float] | None = None) -> tuple[Endpoint, ...]:
    loads = loads or [0.0] * n
    return tuple(
        Endpoint(id=f"b{i}", address="10.0.0.1", port=5000 + i, capacity=capacity, load=loads[i])
        for i in range(n)
    )


def test_registered_and_load_aware() -> None:
    assert POLICIES["p2c"] is PowerOfTwoChoices
    assert PowerOfTwoChoices.uses_load
    assert isinstance(create("p2c"), PowerOfTwoChoices)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_samples_two_distinct_backends_uniformly(seed: int) -> None:
    # Distinct loads, tracker cleared after every pick: the k-th least loaded of n wins
    # exactly when it is drawn with a more loaded one, probability 2(n-k)/(n(n-1)).
    # In particular the most loaded can never win, which a draw of the same backend
    # twice would allow.
    n = 5
    endpoints = backends(n, loads=[0.1 * (i + 1) for i in range(n)])
    tracker = PickTracker()
    picker = create("p2c", random.Random(seed)).build(Snapshot(endpoints, tracker))
    picks = 5000
    counts: Counter[str] = Counter()
    for _ in range(picks):
        chosen = picker.pick(PickRequest())
        assert chosen is not None
        counts[chosen.id] += 1
        tracker.forget(chosen.id)
    assert counts["b4"] == 0
    expected = {f"b{k}": picks * 2 * (n - 1 - k) / (n * (n - 1)) for k in range(n - 1)}
    chi2 = sum((counts[b] - e) ** 2 / e for b, e in expected.items())
    assert chi2 < CHI2_999[len(expected) - 1]


def test_few_backends_compare_all() -> None:
    endpoints = backends(3, loads=[0.3, 0.1, 0.2])
    tracker = PickTracker()
    picker = create("p2c", random.Random(5)).build(Snapshot(endpoints, tracker))
    for _ in range(200):
        chosen = picker.pick(PickRequest())
        assert chosen is not None and chosen.id == "b1"
        tracker.forget(chosen.id)


def test_picks_are_recorded_and_raise_effective_load() -> None:
    endpoints = backends(2, capacity=1)
    tracker = PickTracker()
    picker = create("p2c", random.Random(0)).build(Snapshot(endpoints, tracker))
    picked = [picker.pick(PickRequest()) for _ in range(10)]
    assert tracker.outstanding("b0") + tracker.outstanding("b1") == 10
    # With two idle backends the recorded picks make them alternate.
    assert Counter(e.id for e in picked if e) == {"b0": 5, "b1": 5}


@pytest.mark.parametrize("seed", range(20))
def test_burst_on_idle_backends_stays_within_1_3x_of_mean(seed: int) -> None:
    # The seed's burst: 100 picks before any load report, 10 idle backends, 4 workers each.
    picker = create("p2c", random.Random(seed)).build(Snapshot(backends(10, capacity=4)))
    counts = Counter(picker.pick(PickRequest()).id for _ in range(100))  # type: ignore[union-attr]
    assert sum(counts.values()) == 100
    assert max(counts.values()) <= 13  # 1.3 x the mean of 10


def test_excluded_backends_are_never_picked() -> None:
    endpoints = backends(10)
    tracker = PickTracker()
    picker = create("p2c", random.Random(9)).build(Snapshot(endpoints, tracker))
    for excluded in ({"b0"}, {f"b{i}" for i in range(8)}, {f"b{i}" for i in range(9)}):
        request = PickRequest(exclude_ids=frozenset(excluded))
        for _ in range(300):
            chosen = picker.pick(request)
            assert chosen is not None and chosen.id not in excluded
    everyone = PickRequest(exclude_ids=frozenset(e.id for e in endpoints))
    assert picker.pick(everyone) is None


def test_exclusion_still_prefers_the_less_loaded() -> None:
    # Of the two allowed backends, the idle one always wins.
    endpoints = backends(6, loads=[0.0, 0.9, 0.9, 0.9, 0.9, 0.5])
    tracker = PickTracker()
    picker = create("p2c", random.Random(2)).build(Snapshot(endpoints, tracker))
    request = PickRequest(exclude_ids=frozenset({"b1", "b2", "b3", "b4"}))
    for _ in range(100):
        chosen = picker.pick(request)
        assert chosen is not None and chosen.id == "b0"
        tracker.forget("b0")


def test_empty_snapshot_gives_none() -> None:
    assert create("p2c").build(Snapshot(())).pick(PickRequest()) is None
