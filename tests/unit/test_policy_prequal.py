"""``prequal``: hot-cold lexicographic picks from a bounded, aging pool of reports."""

from __future__ import annotations

import random

import pytest

from lookaside.model import Endpoint, LoadMetrics, PickRequest
from lookaside.policies import POLICIES, PickTracker, Snapshot, create
from lookaside.policies.prequal import Prequal, PrequalConfig, rif_threshold
from tests.unit.latency_world import FakeClock, World, idle_burst


def test_registered_with_the_papers_defaults() -> None:
    assert POLICIES["prequal"] is Prequal and Prequal.uses_load
    config = PrequalConfig()
    assert (config.probes_per_pick, config.pool_size) == (3, 16)
    assert config.max_age == 2.0  # the paper: 1 s; here two report intervals (see the module)
    assert (config.rif_quantile, config.reuse_delta, config.removes_per_pick) == (0.84, 1.0, 1.0)
    assert isinstance(create("prequal", config=PrequalConfig(pool_size=4)), Prequal)


@pytest.mark.parametrize(
    "bad", [{"pool_size": 1}, {"max_age": 0}, {"rif_quantile": 0}, {"probes_per_pick": 0}]
)
def test_bad_config_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PrequalConfig(**bad)  # type: ignore[arg-type]


def test_reuse_budget_is_the_papers_formula() -> None:
    config = PrequalConfig()
    # b = 1 + delta / ((1 - m/n) r_probe - r_remove) with m = 16, n = 100.
    assert config.reuse_budget(100) == pytest.approx(1 + 1 / ((1 - 16 / 100) * 3 - 1))
    assert config.reuse_budget(10) == config.max_reuse  # pool holds them all: undefined
    assert PrequalConfig(reuse_delta=100).reuse_budget(100) == config.max_reuse


def test_threshold_interpolates_and_hot_means_strictly_above() -> None:
    assert rif_threshold([0, 0, 0, 0], 0.84) == 0
    assert rif_threshold([0, 1, 2, 3, 4], 0.75) == 3
    assert rif_threshold([0, 10], 0.5) == 5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skewed_latency_goes_to_the_fast_backends(seed: int) -> None:
    world = World("prequal", seed=seed, latency_ms=[20.0, 20.0, 20.0, 200.0])
    counts = world.run(3.0)
    assert counts["b3"] <= 0.05 * sum(counts.values())
    assert min(counts[b] for b in ("b0", "b1", "b2")) >= 0.25 * sum(counts.values())


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_stalled_backend_is_avoided_and_taken_back_after(seed: int) -> None:
    world = World("prequal", seed=seed)
    before = world.run(2.0)
    assert before["b0"] >= 0.15 * sum(before.values())
    world.stall("b0")  # as under a GC pause or SIGSTOP
    during = world.run(0.5)
    assert during["b0"] <= 2, during
    world.resume("b0")
    after = world.run(1.0)
    assert after["b0"] >= 0.15 * sum(after.values()), after


@pytest.mark.parametrize(("fast_rif", "expected"), [(3, "fast"), (8, "slow")])
def test_latency_at_the_live_queue_decides(fast_rif: int, expected: str) -> None:
    """A 40 ms backend with 3 in flight on 2 workers (80 ms) beats an idle 160 ms one;
    with 8 in flight (180 ms) it does not."""
    clock = FakeClock()
    fast = Endpoint(
        id="fast",
        address="10.0.0.1",
        port=1,
        capacity=2,
        reported_at=clock.now,
        metrics=LoadMetrics(
            requests_in_flight=fast_rif, latency_ms=40.0 * max(1.0, (fast_rif + 1) / 2)
        ),
    )
    slow = Endpoint(id="slow", address="10.0.0.1", port=2, capacity=2, reported_at=clock.now,
                    metrics=LoadMetrics(latency_ms=160.0))  # fmt: skip
    config = PrequalConfig(rif_quantile=1.0)  # nothing is hot: latency alone decides
    policy = create("prequal", random.Random(1), clock, config=config)
    picker = policy.build(Snapshot((fast, slow), PickTracker()))
    chosen = picker.pick(PickRequest())
    assert chosen is not None and chosen.id == expected


def test_a_silent_backend_absorbs_at_most_its_reuse_budget() -> None:
    world = World("prequal", seed=4, latency_ms=[10.0, 50.0, 50.0, 50.0])
    world.run(1.0)
    world.stall("b0")  # its last report stays fresh for max_age, but it never answers
    counts = world.run(0.5, picks_per_second=200)
    assert 1 <= counts["b0"] <= PrequalConfig().max_reuse


def test_reports_older_than_max_age_are_not_probes() -> None:
    clock = FakeClock()
    old = clock.now - 2.0
    endpoints = tuple(
        Endpoint(id=f"b{i}", address="10.0.0.1", port=5000 + i, reported_at=old,
                 metrics=LoadMetrics(latency_ms=1.0 if i == 0 else 100.0))
        for i in range(4)
    )  # fmt: skip
    tracker = PickTracker()
    picker = create("prequal", random.Random(1), clock).build(Snapshot(endpoints, tracker))
    counts = {e.id: 0 for e in endpoints}
    for _ in range(40):
        chosen = picker.pick(PickRequest())
        assert chosen is not None
        counts[chosen.id] += 1
    # No usable probe: least requests in flight, which spreads evenly whatever the latency.
    assert set(counts.values()) == {10}


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_no_herding_on_a_burst(seed: int) -> None:
    counts = idle_burst("prequal", seed)
    assert max(counts.values()) <= 11  # busiest / mean <= 1.1


def test_excluded_backends_are_never_picked() -> None:
    world = World("prequal", seed=1, latency_ms=[1.0, 50.0, 50.0, 50.0])
    picker = world.policy.build(Snapshot(tuple(world.endpoints.values()), world.tracker))
    for _ in range(30):
        chosen = picker.pick(PickRequest(exclude_ids=frozenset({"b0"})))
        assert chosen is not None and chosen.id != "b0"
    assert picker.pick(PickRequest(exclude_ids=frozenset(world.endpoints))) is None
