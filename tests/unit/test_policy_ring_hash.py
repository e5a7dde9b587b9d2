"""``ring_hash``: keys stick, membership changes move the minimum, weights are respected."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

import pytest

from lookaside.model import Endpoint, PickRequest
from lookaside.policies import POLICIES, Picker, Snapshot, create
from lookaside.policies.ring_hash import RingHash, RingHashConfig, point_counts, stable_hash

KEYS = [f"user-{i}" for i in range(10_000)]


def backend(i: int, weight: float = 1.0) -> Endpoint:
    return Endpoint(id=f"b{i}", address="10.0.0.1", port=5000 + i, weight=weight)


def owners(picker: Picker, keys: list[str] = KEYS) -> dict[str, str]:
    result = {}
    for key in keys:
        chosen = picker.pick(PickRequest(hash_key=key))
        assert chosen is not None
        result[key] = chosen.id
    return result


def test_registered_and_not_load_aware() -> None:
    assert POLICIES["ring_hash"] is RingHash
    assert not RingHash.uses_load


def test_stable_hash_is_blake2b_and_pinned() -> None:
    digest = hashlib.blake2b(b"lookaside", digest_size=8).digest()
    assert stable_hash("lookaside") == int.from_bytes(digest, "big")
    # Pinned: a change here re-maps every key of every deployment.
    assert stable_hash("lookaside") == 0x285BFADE29ED52CA


def test_same_key_same_backend_across_rebuilds_and_instances() -> None:
    endpoints = tuple(backend(i) for i in range(10))
    first = owners(create("ring_hash", random.Random(1)).build(Snapshot(endpoints)), KEYS[:500])
    policy = create("ring_hash", random.Random(2))
    policy.build(Snapshot(endpoints))
    again = owners(policy.build(Snapshot(tuple(reversed(endpoints)))), KEYS[:500])
    assert first == again  # independent of rng, instance and registration order


def test_hash_key_wins_over_client_id() -> None:
    picker = create("ring_hash").build(Snapshot(tuple(backend(i) for i in range(10))))
    by_key = picker.pick(PickRequest(hash_key="k-1"))
    assert picker.pick(PickRequest(client_id="someone", hash_key="k-1")) == by_key
    assert picker.pick(PickRequest(client_id="k-1")) == by_key


def test_adding_one_backend_to_ten_moves_about_one_eleventh_and_only_to_it() -> None:
    policy = create("ring_hash")
    ten = tuple(backend(i) for i in range(10))
    before = owners(policy.build(Snapshot(ten)))
    after = owners(policy.build(Snapshot((*ten, backend(10)))))
    moved = [k for k in KEYS if before[k] != after[k]]
    assert abs(len(moved) / len(KEYS) - 1 / 11) < 0.025
    assert {after[k] for k in moved} == {"b10"}


def test_removing_a_backend_moves_only_its_keys() -> None:
    policy = create("ring_hash")
    eleven = tuple(backend(i) for i in range(11))
    before = owners(policy.build(Snapshot(eleven)))
    after = owners(policy.build(Snapshot(tuple(e for e in eleven if e.id != "b4"))))
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved == {k for k in KEYS if before[k] == "b4"}


def test_key_shares_follow_weights() -> None:
    weights = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    picker = create("ring_hash").build(Snapshot(tuple(backend(i, w) for i, w in weights.items())))
    counts = Counter(owners(picker).values())
    total = sum(weights.values())
    for i, weight in weights.items():
        share = counts[f"b{i}"] / len(KEYS)
        # The ring's arcs are random: with 256 points per unit of weight a share is
        # within about 6 % (one stdev) of its weight; allow 20 % either way.
        assert share == pytest.approx(weight / total, rel=0.2)


def test_point_counts_are_proportional_and_independent_of_the_number_of_backends() -> None:
    config = RingHashConfig(points_per_backend=100, max_ring_size=10_000)
    assert point_counts([1.0, 2.5, 1.0], config) == [100, 250, 100]
    assert point_counts([1.0] * 10, config) == point_counts([1.0] * 11, config)[:10]
    # Same ratios at any scale.
    assert point_counts([50.0, 100.0], config) == [100, 200]
    # Beyond max_ring_size everything is scaled down, never below one point.
    assert point_counts([1.0, 1000.0], config) == [9, 9990]
    assert sum(point_counts([1.0] * 200, config)) <= 10_000


@pytest.mark.parametrize("seed", [3, 4])
def test_requests_without_a_key_spread_by_weight(seed: int) -> None:
    weights = {0: 1.0, 1: 3.0}
    picker = create("ring_hash", random.Random(seed)).build(
        Snapshot(tuple(backend(i, w) for i, w in weights.items()))
    )
    counts = Counter(picker.pick(PickRequest()).id for _ in range(4000))  # type: ignore[union-attr]
    assert counts["b1"] / 4000 == pytest.approx(0.75, abs=0.06)


def test_exclusion_walks_forward_to_where_the_key_goes_without_that_backend() -> None:
    policy = create("ring_hash")
    endpoints = tuple(backend(i) for i in range(8))
    picker = policy.build(Snapshot(endpoints))
    without_b3 = owners(
        create("ring_hash").build(Snapshot(tuple(e for e in endpoints if e.id != "b3")))
    )
    for key in KEYS[:2000]:
        chosen = picker.pick(PickRequest(hash_key=key, exclude_ids=frozenset({"b3"})))
        assert chosen is not None and chosen.id == without_b3[key]


def test_all_excluded_gives_none() -> None:
    endpoints = tuple(backend(i) for i in range(3))
    picker = create("ring_hash").build(Snapshot(endpoints))
    everyone = frozenset(e.id for e in endpoints) | {"unrelated"}
    assert picker.pick(PickRequest(hash_key="k", exclude_ids=everyone)) is None


def test_empty_ring_gives_none() -> None:
    assert create("ring_hash").build(Snapshot(())).pick(PickRequest(hash_key="k")) is None


def test_config_is_validated_and_passed_through_create() -> None:
    with pytest.raises(ValueError):
        RingHashConfig(points_per_backend=0)
    policy = create("ring_hash", config=RingHashConfig(points_per_backend=8))
    assert isinstance(policy, RingHash) and policy.config.points_per_backend == 8
