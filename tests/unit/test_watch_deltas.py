"""WatchBackends messages without sockets: full sets, deltas, gaps, shared messages."""

from __future__ import annotations

import asyncio
import random

import grpc
from hypothesis import given, settings
from hypothesis import strategies as st

from lookaside.client.fast_path import BackendWatcher
from lookaside.lb.balancer import Balancer
from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.registry import InMemoryRegistry
from lookaside.lb.watch_hub import WatchHub
from lookaside.lb.watch_sets import WatchSets
from lookaside.model import LoadMetrics, Registration
from lookaside.v1 import load_balancer_pb2 as pb


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def world(
    max_log: int = 1024, max_bytes: int = 4 << 20
) -> tuple[InMemoryRegistry, Balancer, WatchHub, WatchSets, Clock]:
    clock = Clock()
    registry = InMemoryRegistry(clock=clock)
    outlier = OutlierConfig(consecutive_failures=3, success_rate_enabled=False)
    balancer = Balancer(registry, "p2c", rng=random.Random(1), clock=clock, outlier=outlier)
    hub = WatchHub(min_gap=0, max_log=max_log)  # no event loop here: every change publishes
    balancer.subscribe_backends(hub.changed)
    return registry, balancer, hub, WatchSets(balancer, hub, max_bytes), clock


def join(registry: InMemoryRegistry, backend_id: str) -> None:
    registry.register(Registration(backend_id, "127.0.0.1", 9000 + len(registry), "compute"))


class Client:
    """What a delta-applying client keeps: the set by id, in order, and its version."""

    def __init__(self) -> None:
        self.backends: dict[str, pb.BackendInfo] = {}
        self.version: int | None = None
        self.resyncs = 0

    def apply(self, message: pb.BackendSet) -> None:
        if message.full:
            self.resyncs += self.version is not None
            self.backends = {b.id: b for b in message.backends}
        else:
            assert message.base_version == self.version, "a gap: the client would resubscribe"
            for gone in message.removed_ids:
                self.backends.pop(gone, None)
            for backend in message.backends:
                self.backends[backend.id] = backend
        self.version = message.version


def as_dict(message: pb.BackendSet) -> dict[str, tuple[float, float]]:
    return {b.id: (b.load, b.last_report.load) for b in message.backends}


def test_first_message_is_full_then_only_what_changed() -> None:
    registry, _, _, sets, _ = world()
    for name in ("a", "b", "c"):
        join(registry, name)
    first = sets.messages("compute", None)[0]
    assert first.full and [b.id for b in first.backends] == ["a", "b", "c"]
    registry.report("b", 0.5, LoadMetrics(rps_fractional=7))
    delta = sets.messages("compute", first.version)[0]
    assert not delta.full and delta.base_version == first.version
    assert [b.id for b in delta.backends] == ["b"] and delta.backends[0].load == 0.5
    assert delta.backends[0].last_report.rps_fractional == 7
    registry.deregister("a")
    join(registry, "d")
    after = sets.messages("compute", delta.version)[0]
    assert list(after.removed_ids) == ["a"] and [b.id for b in after.backends] == ["d"]
    assert after.version > delta.version


def test_without_deltas_every_message_is_the_whole_set() -> None:
    registry, _, _, sets, _ = world()
    join(registry, "a")
    join(registry, "b")
    registry.report("a", 0.25, LoadMetrics())
    message = sets.messages("compute", None)[0]
    assert message.full and {b.id for b in message.backends} == {"a", "b"}


def test_caught_up_subscribers_share_one_message() -> None:
    registry, _, _, sets, _ = world()
    join(registry, "a")
    base = sets.messages("compute", None)[0].version
    registry.report("a", 0.1, LoadMetrics())
    assert sets.messages("compute", base)[0] is sets.messages("compute", base)[0]
    assert sets.messages("compute", None)[0] is sets.messages("compute", None)[0]


def test_an_ejected_backend_is_removed_and_returns_in_a_delta() -> None:
    registry, balancer, _, sets, clock = world()
    for name in ("a", "b", "c"):
        join(registry, name)
    base = sets.messages("compute", None)[0].version
    balancer.record_client_stats("compute", [("a", 5, 5)])  # every call failed: ejected
    ejected = sets.messages("compute", base)[0]
    assert list(ejected.removed_ids) == ["a"] and not ejected.backends
    registry.report("a", 0.3, LoadMetrics())  # an ejected backend's report offers nothing new
    assert sets.messages("compute", ejected.version)[0].version == ejected.version
    clock.now += 31  # the ejection time is over
    balancer.sweep()
    back = sets.messages("compute", ejected.version)[0]
    assert [b.id for b in back.backends] == ["a"] and back.backends[0].load == 0.3


def test_a_base_older_than_the_log_gets_the_whole_set_again() -> None:
    registry, _, _, sets, _ = world(max_log=4)
    for name in "abcdef":
        join(registry, name)
    old = sets.messages("compute", None)[0]
    for name in "abcdef":  # six changes: the log keeps four, so `old` is out of reach
        registry.report(name, 0.5, LoadMetrics())
    registry.deregister("a")
    resync = sets.messages("compute", old.version)[0]
    assert resync.full and [b.id for b in resync.backends] == list("bcdef")


def test_a_subscriber_that_fell_behind_gets_one_bigger_delta() -> None:
    registry, _, _, sets, _ = world()
    for name in "abc":
        join(registry, name)
    first = sets.messages("compute", None)[0]
    registry.report("a", 0.1, LoadMetrics())
    registry.report("b", 0.2, LoadMetrics())
    registry.report("a", 0.3, LoadMetrics())
    behind = sets.messages("compute", first.version)[0]
    assert [b.id for b in behind.backends] == ["b", "a"]  # oldest change first, once each
    assert behind.backends[1].load == 0.3


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["join", "report", "leave", "read"]),
            st.integers(0, 7),
            st.floats(0, 2, allow_nan=False),
        ),
        max_size=60,
    ),
    st.integers(2, 40),
)
def test_deltas_applied_in_order_rebuild_the_lbs_set(ops: list, max_log: int) -> None:  # type: ignore[type-arg]
    registry, _, _, sets, _ = world(max_log=max_log)
    client = Client()
    client.apply(sets.messages("compute", None)[0])
    for op, index, load in ops:
        backend_id = f"b{index}"
        if op == "join" and registry.get(backend_id) is None:
            join(registry, backend_id)
        elif op == "report" and registry.get(backend_id) is not None:
            registry.report(backend_id, load, LoadMetrics())
        elif op == "leave" and registry.get(backend_id) is not None:
            registry.deregister(backend_id)
        elif op == "read":
            client.apply(sets.messages("compute", client.version)[0])
    client.apply(sets.messages("compute", client.version)[0])
    full = sets.messages("compute", None)[0]
    assert client.version == full.version
    assert {i: (b.load, b.last_report.load) for i, b in client.backends.items()} == as_dict(full)


async def test_publications_are_paced_by_min_gap() -> None:
    hub = WatchHub(min_gap=0.05)
    hub.changed("compute", ["a"])  # nothing published for a while: at once
    assert hub.published("compute") == 1
    hub.changed("compute", ["b"])
    hub.changed("compute", ["c"])
    assert hub.published("compute") == 1  # held back until the gap is over
    await asyncio.wait_for(hub.wait_past("compute", 1), 2)
    assert hub.published("compute") == 3
    assert hub.changed_between("compute", 1, 3) == ["b", "c"]
    assert hub.changed_between("compute", 0, 1) == ["a"]


async def test_a_set_over_the_size_limit_goes_out_in_parts_the_watcher_gathers() -> None:
    registry, _, _, sets, _ = world(max_bytes=700)
    for n in range(60):
        join(registry, f"backend-{n:03d}")
    parts = sets.messages("compute", None)
    assert len(parts) > 3
    assert all(part.ByteSize() <= 700 for part in parts)
    assert [p.continued for p in parts] == [True] * (len(parts) - 1) + [False]
    version = parts[0].version
    assert parts[0].full and all(not p.full and p.base_version == version for p in parts[1:])
    watcher = BackendWatcher(grpc.aio.insecure_channel("127.0.0.1:1"), "c", "compute")
    for part in parts[:-1]:
        assert watcher.apply(part)
        assert watcher.picker is None  # nothing to pick from until the set is whole
    assert watcher.apply(parts[-1])
    assert watcher.size == 60 and watcher.version == version
    # A delta too large for one message is split the same way, on the version held.
    for n in range(30):
        registry.deregister(f"backend-{n:03d}")
    for n in range(30):
        registry.report(f"backend-{n + 30:03d}", 0.5, LoadMetrics())
    delta = sets.messages("compute", version)
    assert len(delta) > 1 and delta[0].base_version == version and not delta[0].full
    for part in delta:
        assert watcher.apply(part)
    assert watcher.size == 30 and {b.load for b in watcher.backends()} == {0.5}
    # A part of another set while gathering one: a gap, so the watcher resubscribes.
    late = BackendWatcher(grpc.aio.insecure_channel("127.0.0.1:1"), "c", "compute")
    assert late.apply(parts[0])
    assert not late.apply(delta[1])
    assert late.picker is None


def test_a_client_that_ignores_parts_but_applies_deltas_still_ends_with_the_set() -> None:
    registry, _, _, sets, _ = world(max_bytes=500)
    for n in range(40):
        join(registry, f"b{n}")
    client = Client()
    for part in sets.messages("compute", None):
        client.apply(part)
    assert len(client.backends) == 40
