"""``peak_ewma``: a latency EWMA that jumps to peaks, x (in flight + 1), by two choices."""

from __future__ import annotations

import math

import pytest

from lookaside.model import PickRequest
from lookaside.policies import POLICIES, Snapshot, create
from lookaside.policies.peak_ewma import PeakEwma, PeakEwmaConfig, PeakEwmaEstimate
from tests.unit.latency_world import World, idle_burst


def test_registered_and_configurable() -> None:
    assert POLICIES["peak_ewma"] is PeakEwma and PeakEwma.uses_load
    policy = create("peak_ewma", config=PeakEwmaConfig(decay_time=5.0))
    assert isinstance(policy, PeakEwma) and policy.config.decay_time == 5.0
    with pytest.raises(ValueError):
        PeakEwmaConfig(decay_time=0)


def test_estimate_jumps_to_peaks_and_decays_with_the_time_constant() -> None:
    estimate = PeakEwmaEstimate(0.0, stamp=0.0)
    estimate.observe(20.0, 0.0, decay_time=1.0)
    estimate.observe(300.0, 0.1, decay_time=1.0)
    assert estimate.cost_ms == 300.0  # a peak counts at once
    estimate.observe(20.0, 1.1, decay_time=1.0)  # one time constant later
    assert estimate.cost_ms == pytest.approx(300 * math.exp(-1) + 20 * (1 - math.exp(-1)))
    assert estimate.current(2.1, 1.0) == pytest.approx(estimate.cost_ms * math.exp(-1))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_skewed_latency_goes_to_the_fast_backends(seed: int) -> None:
    world = World("peak_ewma", seed=seed, latency_ms=[20.0, 20.0, 20.0, 200.0])
    counts = world.run(3.0)
    assert counts["b3"] <= 0.05 * sum(counts.values())
    assert min(counts[b] for b in ("b0", "b1", "b2")) >= 0.25 * sum(counts.values())


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_stalled_backend_is_avoided_and_taken_back_after(seed: int) -> None:
    world = World("peak_ewma", seed=seed)
    before = world.run(2.0)
    assert before["b0"] >= 0.15 * sum(before.values())
    world.stall("b0")
    during = world.run(0.5)
    # Its fair share would be 12 of these 50 picks; it gets one or two before its report is late.
    assert during["b0"] <= 3, during
    world.resume("b0")
    after = world.run(1.0)  # silence is not remembered: its first report ends it
    assert after["b0"] >= 0.15 * sum(after.values()), after


def test_a_peak_in_reported_latency_is_remembered_and_decays() -> None:
    world = World("peak_ewma", seed=1, latency_ms=[20.0] * 4)
    world.run(1.0)
    world.latency_ms[0] = 200.0  # b0 turns slow...
    world.run(0.2)
    world.latency_ms[0] = 20.0  # ...and fast again: the peak holds it back for a while
    soon = world.run(0.5)
    assert soon["b0"] <= 0.1 * sum(soon.values()), soon
    world.run(3.0)  # three time constants
    later = world.run(2.0)
    assert later["b0"] >= 0.15 * sum(later.values()), later


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_no_herding_on_a_burst(seed: int) -> None:
    counts = idle_burst("peak_ewma", seed)
    # Two choices on (in flight + 1): the busiest stays within a few of the mean of 10.
    assert max(counts.values()) <= 13


def test_excluded_backends_are_never_picked() -> None:
    world = World("peak_ewma", seed=1, latency_ms=[1.0, 50.0, 50.0, 50.0])
    picker = world.policy.build(Snapshot(tuple(world.endpoints.values()), world.tracker))
    for _ in range(30):
        chosen = picker.pick(PickRequest(exclude_ids=frozenset({"b0"})))
        assert chosen is not None and chosen.id != "b0"
    assert picker.pick(PickRequest(exclude_ids=frozenset(world.endpoints))) is None
