"""The seed's policies: pick_first order and exclusion, round robin fairness, least_load."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lookaside.model import Endpoint, PickRequest
from lookaside.policies import PickTracker, Snapshot, create


def backend(i: int, capacity: int = 1, load: float = 0.0) -> Endpoint:
    return Endpoint(id=f"b{i}", address="10.0.0.1", port=5000 + i, capacity=capacity, load=load)


def ids(picks: list[Endpoint | None]) -> list[str]:
    return [e.id if e else "-" for e in picks]


# pick_first


def test_pick_first_always_takes_the_first_in_registration_order() -> None:
    picker = create("pick_first").build(Snapshot((backend(2), backend(0), backend(1))))
    assert ids([picker.pick(PickRequest()) for _ in range(5)]) == ["b2"] * 5


def test_pick_first_skips_excluded_in_order() -> None:
    picker = create("pick_first").build(Snapshot((backend(0), backend(1), backend(2))))
    assert ids([picker.pick(PickRequest(exclude_ids=frozenset({"b0"})))]) == ["b1"]
    assert ids([picker.pick(PickRequest(exclude_ids=frozenset({"b0", "b1"})))]) == ["b2"]
    assert picker.pick(PickRequest(exclude_ids=frozenset({"b0", "b1", "b2"}))) is None


def test_pick_first_next_one_takes_over_when_the_first_leaves() -> None:
    policy = create("pick_first")
    policy.build(Snapshot((backend(0), backend(1))))
    picker = policy.build(Snapshot((backend(1),)))
    assert ids([picker.pick(PickRequest())]) == ["b1"]


def test_pick_first_empty_gives_none() -> None:
    assert create("pick_first").build(Snapshot(())).pick(PickRequest()) is None


# round_robin


def test_round_robin_one_full_cycle_visits_everyone_once() -> None:
    endpoints = tuple(backend(i) for i in range(5))
    picker = create("round_robin", random.Random(4)).build(Snapshot(endpoints))
    for _ in range(3):
        cycle = ids([picker.pick(PickRequest()) for _ in range(5)])
        assert sorted(cycle) == [f"b{i}" for i in range(5)]


def test_round_robin_stays_fair_when_backends_join() -> None:
    policy = create("round_robin", random.Random(1))
    members = [backend(0), backend(1), backend(2)]
    counts: Counter[str] = Counter()
    for newcomer in range(3, 8):
        picker = policy.build(Snapshot(tuple(members)))
        for _ in range(len(members) + 1):  # not a whole cycle: the rebuild lands mid-cycle
            counts[picker.pick(PickRequest()).id] += 1  # type: ignore[union-attr]
        members.append(backend(newcomer))
    # Resuming after the last pick: nobody is skipped or served twice in a cycle,
    # so the members present from the start are within one pick of each other.
    founders = [counts[f"b{i}"] for i in range(3)]
    assert max(founders) - min(founders) <= 1


def test_round_robin_stays_fair_when_a_backend_that_was_not_last_picked_leaves() -> None:
    policy = create("round_robin", random.Random(2))
    members = tuple(backend(i) for i in range(4))
    picker = policy.build(Snapshot(members))
    first = ids([picker.pick(PickRequest()) for _ in range(2)])
    gone = next(m for m in members if m.id not in first)
    remaining = tuple(m for m in members if m is not gone)
    picker = policy.build(Snapshot(remaining))
    rest = ids([picker.pick(PickRequest()) for _ in range(1)])
    # The interrupted cycle completes with the one backend not yet served.
    assert sorted(first + rest) == sorted(m.id for m in remaining)


def test_round_robin_stays_fair_when_the_last_picked_backend_leaves() -> None:
    policy = create("round_robin", random.Random(0))
    members = tuple(backend(i) for i in range(4))
    picker = policy.build(Snapshot(members))
    while picker.pick(PickRequest()).id != "b1":  # type: ignore[union-attr]
        pass
    # b1 leaves right after being served: the cycle should go on with its successor b2,
    # not restart at b0 (which would serve b0 twice while b2 and b3 wait).
    picker = policy.build(Snapshot(tuple(m for m in members if m.id != "b1")))
    assert ids([picker.pick(PickRequest()) for _ in range(3)]) == ["b2", "b3", "b0"]


def test_round_robin_skips_excluded() -> None:
    endpoints = tuple(backend(i) for i in range(3))
    picker = create("round_robin", random.Random(3)).build(Snapshot(endpoints))
    request = PickRequest(exclude_ids=frozenset({"b1"}))
    picks = ids([picker.pick(request) for _ in range(6)])
    assert "b1" not in picks and Counter(picks) == {"b0": 3, "b2": 3}
    assert picker.pick(PickRequest(exclude_ids=frozenset({"b0", "b1", "b2"}))) is None


# least_load


@pytest.mark.parametrize("seed", range(10))
def test_least_load_burst_on_idle_backends_is_even(seed: int) -> None:
    # The seed's burst: 100 picks, 10 idle backends with 4 workers; none above 13.
    endpoints = tuple(backend(i, capacity=4) for i in range(10))
    picker = create("least_load", random.Random(seed)).build(Snapshot(endpoints, PickTracker()))
    counts = Counter(ids([picker.pick(PickRequest()) for _ in range(100)]))
    assert max(counts.values()) <= 13
    # Counting picks per capacity makes it exact: 10 each.
    assert set(counts.values()) == {10}


def test_least_load_prefers_lower_reported_load_and_counts_picks() -> None:
    endpoints = (backend(0, capacity=2, load=0.5), backend(1, capacity=2, load=0.0))
    tracker = PickTracker()
    picker = create("least_load", random.Random(0)).build(Snapshot(endpoints, tracker))
    # b1 takes picks until its effective load (0 + picks/2) reaches b0's 0.5.
    assert ids([picker.pick(PickRequest())]) == ["b1"]
    assert tracker.outstanding("b1") == 1
    later = Counter(ids([picker.pick(PickRequest()) for _ in range(8)]))
    assert later == {"b0": 4, "b1": 4}


def test_least_load_ties_are_broken_at_random() -> None:
    endpoints = tuple(backend(i) for i in range(5))
    firsts = set()
    for seed in range(30):
        picker = create("least_load", random.Random(seed)).build(Snapshot(endpoints))
        firsts.add(ids([picker.pick(PickRequest())])[0])
    assert len(firsts) >= 3


def test_least_load_skips_excluded() -> None:
    endpoints = (backend(0), backend(1, load=0.9))
    picker = create("least_load", random.Random(0)).build(Snapshot(endpoints, PickTracker()))
    request = PickRequest(exclude_ids=frozenset({"b0"}))
    assert ids([picker.pick(request) for _ in range(3)]) == ["b1"] * 3
    assert picker.pick(PickRequest(exclude_ids=frozenset({"b0", "b1"}))) is None
