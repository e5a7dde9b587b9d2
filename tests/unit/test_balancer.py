"""Balancer: pickers follow the registry; per-service policies; clear errors."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from lookaside.errors import NoBackendAvailable, NotFound
from lookaside.lb.balancer import Balancer
from lookaside.lb.registry import InMemoryRegistry, Registration
from lookaside.model import LoadMetrics, PickRequest


def setup(policy: str = "round_robin", **per_service: str) -> tuple[InMemoryRegistry, Balancer]:
    registry = InMemoryRegistry()
    return registry, Balancer(registry, policy, per_service, rng=random.Random(7))


def add(
    registry: InMemoryRegistry, backend_id: str, service: str = "compute", cap: int = 1
) -> None:
    port = 9000 + len(registry)
    registry.register(Registration(backend_id, "127.0.0.1", port, service, capacity=cap))


def test_unknown_service_is_not_found_once_the_lb_has_been_up_a_ttl() -> None:
    now = [100.0]
    registry = InMemoryRegistry(ttl=5.0, clock=lambda: now[0])
    balancer = Balancer(registry, "round_robin", clock=lambda: now[0])
    with pytest.raises(NoBackendAvailable, match="'payments'"):  # its backends may be on the way
        balancer.pick("payments", PickRequest())
    now[0] += 5.0
    with pytest.raises(NotFound, match="'payments'"):
        balancer.pick("payments", PickRequest())


def test_known_service_with_no_live_backend_is_unavailable() -> None:
    registry, balancer = setup()
    add(registry, "a", "payments")
    registry.deregister("a")
    with pytest.raises(NoBackendAvailable, match="'payments'"):
        balancer.pick("payments", PickRequest())


def test_joins_and_leaves_rebuild_the_picker() -> None:
    registry, balancer = setup()
    add(registry, "a")
    add(registry, "b")
    picks = Counter(balancer.pick("compute", PickRequest()).id for _ in range(10))
    assert picks == {"a": 5, "b": 5}
    registry.deregister("a")
    assert {balancer.pick("compute", PickRequest()).id for _ in range(4)} == {"b"}


def test_every_backend_excluded_is_reported_as_such() -> None:
    registry, balancer = setup()
    add(registry, "a")
    with pytest.raises(NoBackendAvailable, match="excluded"):
        balancer.pick("compute", PickRequest(exclude_ids=frozenset({"a"})))


def test_service_policy_overrides_default() -> None:
    registry, balancer = setup("round_robin", sticky="pick_first")
    for name in ("s1", "s2", "s3"):
        add(registry, name, "sticky")
    assert balancer.policy_name("sticky") == "pick_first"
    assert {balancer.pick("sticky", PickRequest()).id for _ in range(6)} == {"s1"}


def test_load_reports_reset_outstanding_picks() -> None:
    registry, balancer = setup("least_load")
    add(registry, "a", cap=4)
    add(registry, "b", cap=4)
    first = [balancer.pick("compute", PickRequest()).id for _ in range(8)]
    assert Counter(first) == {"a": 4, "b": 4}
    # "a" reports it is idle again: its outstanding picks are forgotten.
    registry.report("a", 0.0, LoadMetrics())
    assert [balancer.pick("compute", PickRequest()).id for _ in range(4)] == ["a"] * 4


def test_unknown_policy_fails_fast() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        Balancer(InMemoryRegistry(), "fastest")


def test_failing_backend_is_ejected_then_returns() -> None:
    from lookaside.lb.outlier import OutlierConfig

    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    registry = InMemoryRegistry(clock=clock)
    balancer = Balancer(
        registry,
        "round_robin",
        rng=random.Random(1),
        clock=clock,
        outlier=OutlierConfig(consecutive_failures=3, base_ejection_time=30),
    )
    for name in ("a", "b", "c"):
        add(registry, name)
    balancer.record_client_stats("compute", [("b", 3, 3), ("a", 5, 0)])
    assert balancer.ejected("compute") == {"b"}
    assert "b" not in {balancer.pick("compute", PickRequest()).id for _ in range(9)}
    clock.now += 31
    balancer.sweep()
    assert balancer.ejected("compute") == frozenset()
    assert "b" in {balancer.pick("compute", PickRequest()).id for _ in range(9)}


def test_policy_options_reach_the_policy() -> None:
    registry = InMemoryRegistry()
    with pytest.raises(ValueError, match="bad options"):
        Balancer(registry, "least_load", policy_options={"least_load": {"nonsense": 1}})
    Balancer(registry, "least_load", policy_options={"least_load": {"tolerance": 0.1}})
