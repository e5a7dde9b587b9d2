"""Serving state in the LB: NOT_SERVING and DRAINING keep the lease but leave every pick."""

from __future__ import annotations

import random

import pytest

from lookaside.errors import NoBackendAvailable
from lookaside.lb.balancer import Balancer
from lookaside.lb.registry import Change, InMemoryRegistry
from lookaside.model import LoadMetrics, PickRequest, Registration, ServingState


@pytest.mark.parametrize("policy", ["round_robin", "least_load"])
@pytest.mark.parametrize("state", [ServingState.NOT_SERVING, ServingState.DRAINING])
def test_a_backend_that_is_not_serving_is_kept_but_not_picked(
    policy: str, state: ServingState
) -> None:
    now = [0.0]
    registry = InMemoryRegistry(ttl=5, clock=lambda: now[0])
    balancer = Balancer(registry, policy, rng=random.Random(1), clock=lambda: now[0])
    changes: list[Change] = []
    registry.subscribe(lambda service, backend_id, change: changes.append(change))
    for name in ("a", "b"):
        registry.register(Registration(name, "127.0.0.1", 1 + ord(name), "compute"))

    registry.report("a", 0.0, LoadMetrics(), state)
    assert changes[-1] is Change.STATE
    assert [e.id for e in balancer.live("compute")] == ["b"]
    assert {balancer.pick("compute", PickRequest()).id for _ in range(10)} == {"b"}
    assert [e.id for e in registry.endpoints("compute")] == ["a", "b"]  # lease kept

    now[0] = 4.0
    registry.report("a", 0.0, LoadMetrics(), state)  # reports still renew the lease
    assert changes[-1] is Change.LOAD
    now[0] = 7.0
    assert [e.id for e in registry.expire()] == ["b"]  # b fell silent; a kept its lease

    registry.report("a", 0.0, LoadMetrics(), ServingState.SERVING)
    assert [e.id for e in balancer.live("compute")] == ["a"]


def test_no_serving_backend_means_no_pick() -> None:
    registry = InMemoryRegistry(ttl=5, clock=lambda: 0.0)
    balancer = Balancer(registry, "round_robin", clock=lambda: 0.0)
    registry.register(Registration("a", "127.0.0.1", 1, "compute"))
    registry.report("a", 0.0, LoadMetrics(), ServingState.NOT_SERVING)
    with pytest.raises(NoBackendAvailable, match="no live backend"):
        balancer.pick("compute", PickRequest(exclude_ids=frozenset({"x"})))
