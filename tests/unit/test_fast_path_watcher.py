"""BackendWatcher.apply: the local picker follows the announced set (no sockets)."""

from __future__ import annotations

import random
from collections import Counter

import grpc

from lookaside.client.fast_path import BackendWatcher
from lookaside.lb.watch_hub import WatchHub
from lookaside.model import PickRequest
from lookaside.v1 import load_balancer_pb2 as pb


def info(backend_id: str, load: float = 0.0, capacity: int = 4) -> pb.BackendInfo:
    return pb.BackendInfo(
        id=backend_id,
        address="127.0.0.1",
        port=9000,
        load=load,
        capacity=capacity,
        last_report=pb.LoadReport(id=backend_id, load=load),
    )


async def make_watcher(policy: str | None = None) -> BackendWatcher:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never used: apply() only
    return BackendWatcher(channel, "c", "compute", policy=policy, rng=random.Random(3))


async def test_local_least_load_counts_own_picks_until_the_next_report() -> None:
    watcher = await make_watcher()
    assert watcher.pick(PickRequest()) is None  # nothing announced yet
    watcher.apply(pb.BackendSet(policy="least_load", backends=[info("a"), info("b")]))
    first = Counter(watcher.pick(PickRequest()).id for _ in range(8))  # type: ignore[union-attr]
    assert first == {"a": 4, "b": 4}
    # "a" reports again (idle): our picks on it are forgotten, "b" keeps its count.
    watcher.apply(pb.BackendSet(policy="least_load", backends=[info("a", 0.0001), info("b")]))
    assert [watcher.pick(PickRequest()).id for _ in range(4)] == ["a"] * 4  # type: ignore[union-attr]


async def test_policy_override_leaves_and_exclusions() -> None:
    watcher = await make_watcher("round_robin")
    watcher.apply(pb.BackendSet(policy="least_load", backends=[info("a"), info("b"), info("c")]))
    assert watcher.size == 3
    picks = Counter(watcher.pick(PickRequest()).id for _ in range(9))  # type: ignore[union-attr]
    assert picks == {"a": 3, "b": 3, "c": 3}
    watcher.apply(pb.BackendSet(policy="least_load", backends=[info("a"), info("c")]))
    assert {watcher.pick(PickRequest()).id for _ in range(6)} == {"a", "c"}  # type: ignore[union-attr]
    assert watcher.pick(PickRequest(exclude_ids=frozenset({"a", "c"}))) is None


async def test_hub_wakes_waiters_on_change() -> None:
    import asyncio

    hub = WatchHub(min_gap=0)
    seen = hub.version("compute")
    waiter = asyncio.create_task(hub.wait_past("compute", seen))
    await asyncio.sleep(0)
    assert not waiter.done()
    hub.changed("other")
    await asyncio.sleep(0)
    assert not waiter.done()
    hub.changed("compute")
    await asyncio.wait_for(waiter, 1)
    assert hub.version("compute") == seen + 1
