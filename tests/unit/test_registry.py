"""Registry: membership, idempotent re-registration, leases on an injected clock."""

from __future__ import annotations

import pytest

from lookaside.errors import AlreadyExists, NotFound, ResourceExhausted
from lookaside.lb.registry import Change, InMemoryRegistry, Registration
from lookaside.model import LoadMetrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reg(backend_id: str, port: int = 9000, service: str = "compute") -> Registration:
    return Registration(id=backend_id, address="127.0.0.1", port=port, service=service)


def test_registration_order_is_kept_and_reregistration_is_idempotent() -> None:
    registry = InMemoryRegistry(ttl=5, clock=FakeClock())
    assert registry.register(reg("a", 1))
    assert registry.register(reg("b", 2))
    assert not registry.register(reg("a", 1))  # same id, same place: a renewal
    assert [e.id for e in registry.endpoints("compute")] == ["a", "b"]


def test_same_id_elsewhere_is_refused_while_the_lease_lives() -> None:
    clock = FakeClock()
    registry = InMemoryRegistry(ttl=5, clock=clock)
    registry.register(reg("a", 1))
    with pytest.raises(AlreadyExists):
        registry.register(reg("a", 2))
    clock.now += 5
    registry.expire()
    assert registry.register(reg("a", 2))
    assert registry.get("a") is not None and registry.get("a").port == 2  # type: ignore[union-attr]


def test_lease_expires_without_reports_and_reports_renew_it() -> None:
    clock = FakeClock()
    registry = InMemoryRegistry(ttl=5, clock=clock)
    registry.register(reg("quiet", 1))
    registry.register(reg("chatty", 2))
    clock.now += 4
    registry.report("chatty", 0.5, LoadMetrics())
    assert registry.expire() == []
    clock.now += 1.5
    assert [e.id for e in registry.expire()] == ["quiet"]
    assert [e.id for e in registry.endpoints("compute")] == ["chatty"]
    assert registry.get("chatty").load == 0.5  # type: ignore[union-attr]


def test_report_for_unknown_id_is_not_found() -> None:
    registry = InMemoryRegistry()
    with pytest.raises(NotFound):
        registry.report("ghost", 0.1, LoadMetrics())
    with pytest.raises(NotFound):
        registry.deregister("ghost")


def test_services_are_separate_and_listeners_hear_every_change() -> None:
    registry = InMemoryRegistry(ttl=5, clock=FakeClock())
    heard: list[tuple[str, str, Change]] = []
    registry.subscribe(lambda s, b, c: heard.append((s, b, c)))
    registry.register(reg("a", 1, "compute"))
    registry.register(reg("x", 2, "other"))
    registry.report("x", 0.2, LoadMetrics())
    registry.deregister("a")
    assert registry.endpoints("compute") == ()
    assert [e.id for e in registry.endpoints("other")] == ["x"]
    assert registry.services() == ["other"]
    assert heard == [
        ("compute", "a", Change.JOINED),
        ("other", "x", Change.JOINED),
        ("other", "x", Change.LOAD),
        ("compute", "a", Change.LEFT),
    ]


def test_mark_down_is_immediate_and_idempotent() -> None:
    registry = InMemoryRegistry()
    registry.register(reg("a"))
    assert registry.mark_down("a") is not None
    assert registry.mark_down("a") is None
    assert len(registry) == 0


def test_max_backends_per_service() -> None:
    registry = InMemoryRegistry(max_backends_per_service=2)
    registry.register(reg("a", 1))
    registry.register(reg("b", 2))
    with pytest.raises(ResourceExhausted):
        registry.register(reg("c", 3))
    assert len(registry) == 2


def test_expiry_looks_only_at_due_leases_and_renewals_add_no_work() -> None:
    clock = FakeClock()
    registry = InMemoryRegistry(ttl=5, clock=clock, max_backends_per_service=5000)
    for n in range(1000):
        registry.register(reg(f"b{n}", 10000 + n))
    for _ in range(30):  # many reports per lease: the heap keeps one entry per backend
        clock.now += 0.2
        for n in range(0, 1000, 2):
            registry.report(f"b{n}", 0.1, LoadMetrics())
        registry.expire()
    assert len(registry._deadlines) <= 1000
    # The odd ones never reported: gone, in one sweep; the even ones live on.
    assert {e.id for e in registry.endpoints("compute")} == {f"b{n}" for n in range(0, 1000, 2)}
    clock.now += 5.01
    assert len(registry.expire()) == 500 and len(registry) == 0
    # A lease handed to another replica never expires here; taken back, it does again.
    registry.register(reg("held", 1))
    registry.release("held")
    clock.now += 60
    assert registry.expire() == []
    registry.hold("held")
    clock.now += 5
    assert [e.id for e in registry.expire()] == ["held"]
