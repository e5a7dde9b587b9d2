"""BackendWatcher.apply with WatchBackends deltas: full sets replace, deltas merge (no sockets)."""

from __future__ import annotations

import random

import grpc

from lookaside.client.fast_path import BackendWatcher
from lookaside.model import PickRequest
from lookaside.v1 import load_balancer_pb2 as pb


def info(backend_id: str, port: int = 9000) -> pb.BackendInfo:
    return pb.BackendInfo(id=backend_id, address="127.0.0.1", port=port, capacity=1)


async def watcher(departed: list[set[str]] | None = None) -> BackendWatcher:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never used: apply() only
    return BackendWatcher(
        channel,
        "c",
        "echo",
        rng=random.Random(1),
        on_departed=None if departed is None else departed.append,
    )


def ids(w: BackendWatcher) -> list[str]:
    return [b.id for b in w.backends()]


async def test_full_set_then_delta_merges_in_order() -> None:
    departed: list[set[str]] = []
    w = await watcher(departed)
    full = pb.BackendSet(
        policy="round_robin", backends=[info("a"), info("b")], version=3, full=True
    )
    assert w.apply(full)
    assert ids(w) == ["a", "b"] and w.version == 3
    delta = pb.BackendSet(
        policy="round_robin",
        backends=[info("c"), info("a", port=9001)],
        removed_ids=["b"],
        version=5,
        base_version=3,
    )
    assert w.apply(delta)
    assert ids(w) == ["a", "c"] and w.version == 5
    assert next(b for b in w.backends() if b.id == "a").port == 9001  # changed in place
    assert departed == [{"a", "b"}]  # b left; a moved, so its old channel goes too
    picked = {w.pick(PickRequest()).id for _ in range(4)}  # type: ignore[union-attr]
    assert picked == {"a", "c"}


async def test_delta_on_another_version_is_refused_and_changes_nothing() -> None:
    w = await watcher()
    assert w.apply(pb.BackendSet(policy="round_robin", backends=[info("a")], version=7, full=True))
    stale = pb.BackendSet(backends=[info("z")], removed_ids=["a"], version=9, base_version=8)
    assert not w.apply(stale)  # the caller resubscribes
    assert ids(w) == ["a"] and w.version == 7


async def test_lb_that_ignores_accept_deltas_sends_whole_sets() -> None:
    """Every message whole, ``full`` false and no base_version: each one replaces the set."""
    w = await watcher()
    assert w.apply(pb.BackendSet(policy="p2c", backends=[info("a"), info("b")], version=1))
    assert w.apply(pb.BackendSet(policy="p2c", backends=[info("b")], version=2))
    assert ids(w) == ["b"]
    assert w.apply(pb.BackendSet(policy="p2c", backends=[], version=3))
    assert ids(w) == [] and w.pick(PickRequest()) is None


async def test_full_set_after_deltas_replaces_everything() -> None:
    w = await watcher()
    w.apply(pb.BackendSet(policy="round_robin", backends=[info("a")], version=1, full=True))
    w.apply(pb.BackendSet(backends=[info("b")], version=2, base_version=1))
    assert ids(w) == ["a", "b"]
    w.apply(pb.BackendSet(policy="round_robin", backends=[info("c")], version=10, full=True))
    assert ids(w) == ["c"] and w.version == 10


async def test_delta_without_a_policy_keeps_the_policy_held() -> None:
    w = await watcher()
    w.apply(
        pb.BackendSet(policy="pick_first", backends=[info("a"), info("b")], version=1, full=True)
    )
    w.apply(pb.BackendSet(backends=[info("c")], version=2, base_version=1))
    assert {w.pick(PickRequest()).id for _ in range(5)} == {"a"}  # type: ignore[union-attr]
