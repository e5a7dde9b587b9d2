"""The in-memory store and the registry view a shared store feeds (no sockets)."""

from __future__ import annotations

import pytest

from lookaside.errors import AlreadyExists, NotFound
from lookaside.lb.registry import Change, InMemoryRegistry
from lookaside.lb.store import MemoryStore
from lookaside.model import Endpoint, LoadMetrics, Registration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def reg(backend_id: str, port: int = 9000) -> Registration:
    return Registration(id=backend_id, address="127.0.0.1", port=port, service="compute")


async def test_the_memory_store_is_the_view_itself() -> None:
    clock = FakeClock()
    view = InMemoryRegistry(ttl=5, clock=clock)
    store = MemoryStore(view)
    assert await store.register(reg("a"))
    assert not await store.register(reg("a"))
    assert store.report("a", 0.5, LoadMetrics()).load == 0.5
    clock.now += 6
    assert [e.id for e in store.expire()] == ["a"]
    with pytest.raises(NotFound):
        await store.deregister("a")
    assert store.mark_down("a") is None
    assert store.describe() == "memory"


def test_upsert_applies_newer_revisions_only_and_keeps_the_load() -> None:
    view = InMemoryRegistry(ttl=5, clock=FakeClock())
    heard: list[tuple[str, Change]] = []
    view.subscribe(lambda _s, b, c: heard.append((b, c)))
    assert view.upsert(Endpoint("a", "h", 1, capacity=2), revision=10, held=False) is Change.JOINED
    view.apply_load("a", 0.75, LoadMetrics(), reported_at=99.0)
    assert view.upsert(Endpoint("a", "h", 1, capacity=2), revision=9, held=False) is None
    assert view.upsert(Endpoint("a", "h", 1, capacity=4), revision=11, held=False) is Change.LOAD
    a = view.get("a")
    assert a is not None and (a.capacity, a.load, view.revision("a")) == (4, 0.75, 11)
    assert heard == [("a", Change.JOINED), ("a", Change.LOAD), ("a", Change.LOAD)]


def test_a_record_at_another_place_replaces_the_old_one() -> None:
    view = InMemoryRegistry(ttl=5, clock=FakeClock())
    heard: list[Change] = []
    view.subscribe(lambda _s, _b, c: heard.append(c))
    view.upsert(Endpoint("a", "h", 1), revision=1, held=False)
    view.upsert(Endpoint("a", "h", 2), revision=2, held=False)
    assert heard == [Change.JOINED, Change.LEFT, Change.JOINED]
    assert view.get("a").port == 2  # type: ignore[union-attr]


def test_only_held_backends_expire_here() -> None:
    clock = FakeClock()
    view = InMemoryRegistry(ttl=5, clock=clock)
    view.upsert(Endpoint("mine", "h", 1), revision=1, held=True)
    view.upsert(Endpoint("theirs", "h", 2), revision=2, held=False)
    clock.now += 10
    assert [e.id for e in view.expire()] == ["mine"]
    assert view.get("theirs") is not None
    view.hold("theirs")  # its stream moved here
    assert view.held("theirs")
    clock.now += 10
    assert [e.id for e in view.expire()] == ["theirs"]


def test_release_stops_expiry_and_a_report_takes_it_back() -> None:
    clock = FakeClock()
    view = InMemoryRegistry(ttl=5, clock=clock)
    view.register(reg("a"))
    view.release("a")
    clock.now += 10
    assert view.expire() == []
    view.report("a", 0.1, LoadMetrics())
    assert view.held("a")


def test_check_register_changes_nothing() -> None:
    view = InMemoryRegistry(ttl=5, clock=FakeClock(), max_backends_per_service=1)
    assert view.check_register(reg("a")) is None
    assert len(view) == 0
    view.register(reg("a"))
    assert view.check_register(reg("a")) == view.get("a")
    with pytest.raises(AlreadyExists):
        view.check_register(reg("a", 9001))
