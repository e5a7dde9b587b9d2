"""LB replicas over a real etcd, as real processes: one membership, seen by every replica.

The figures (time until a registration through one replica is handed out by
another) are printed with ``pytest -s``.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from lookaside.bench.etcd_cluster import EtcdCluster
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import wait_until
from tests.integration.replica_fleet import Fleet, running_fleet, seconds_until


@pytest.fixture
def fleet(etcd: EtcdCluster, tmp_path: Path) -> Iterator[Fleet]:
    yield from running_fleet(etcd, tmp_path)


def get_backend(fleet: Fleet, replica: ServerProcess) -> str:
    """The id GetBackend at ``replica`` answers, or "" when it has none."""

    async def call() -> str:
        async with grpc.aio.insecure_channel(fleet.target(replica)) as channel:
            stub = pb_grpc.LoadBalancerStub(channel)
            try:
                reply = await stub.GetBackend(pb.ServerRequest(client_id="t"), timeout=2)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                return ""
            return str(reply.id)

    return asyncio.run(call())


def test_a_backend_registered_through_a_is_handed_out_by_c_within_a_second(fleet: Fleet) -> None:
    a, _b, c = fleet.start_replicas(3)
    delays = []
    for n in range(5):
        fleet.register(a, f"r{n}", 9000 + n)
        delays.append(seconds_until(lambda n=n: f"r{n}" in fleet.live_ids(c), 5, f"r{n} at c"))
    median, worst = statistics.median(delays) * 1000, max(delays) * 1000
    print(f"\n[replicas] via A, seen at C: median {median:.0f} ms, max {worst:.0f} ms of 5")
    assert max(delays) < 1.0
    fleet.start_backend("real", fleet.target(a))
    wait_until(lambda: get_backend(fleet, c) != "", 5, "C to hand out a backend")
    handed = {get_backend(fleet, c) for _ in range(12)}
    assert "real" in handed


def test_a_registered_id_elsewhere_is_refused_by_every_replica(fleet: Fleet) -> None:
    a, b = fleet.start_replicas(2)
    fleet.register(a, "dup", 9100)
    wait_until(lambda: "dup" in fleet.live_ids(b), 5, "dup at b")
    with pytest.raises(grpc.RpcError) as refused:
        fleet.register(b, "dup", 9101)
    assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS  # type: ignore[attr-defined]


def test_a_backend_that_dies_leaves_every_replica_within_its_ttl(fleet: Fleet) -> None:
    a, b, c = fleet.start_replicas(3)
    fleet.start_backend("doomed", fleet.target(a))
    fleet.start_backend("stays", fleet.target(b))
    fleet.wait_everywhere({"doomed", "stays"})
    fleet.backends["doomed"].kill()
    # Its stream to A breaks: A deletes the record and every replica drops it (the TTL,
    # 1.5 s here, is the bound when only its reports stop).
    gone = seconds_until(lambda: "doomed" not in fleet.live_ids(c), 5, "doomed to leave c")
    fleet.wait_everywhere({"stays"}, timeout=5)
    print(f"\n[replicas] SIGKILLed backend gone from C after {gone * 1000:.0f} ms")


def test_a_backend_silent_past_its_ttl_expires_on_every_replica(fleet: Fleet) -> None:
    a, b = fleet.start_replicas(2)
    fleet.register(a, "silent", 9200)  # registers, then never reports
    wait_until(lambda: "silent" in fleet.live_ids(b), 5, "silent at b")
    gone = seconds_until(lambda: "silent" not in fleet.live_ids(b), 10, "silent to expire at b")
    assert "silent" not in fleet.live_ids(a)
    assert gone > 0.5  # it lived for its lease first
    print(f"\n[replicas] silent backend expired at B after {gone:.2f} s (ttl 1.5 s)")


def test_loads_heard_by_one_replica_are_picked_on_by_the_others(fleet: Fleet) -> None:
    a, b = fleet.start_replicas(2, "--policy", "least_load")
    fleet.start_backend("busy", fleet.target(a), work_ms=400)
    fleet.start_backend("idle", fleet.target(a))
    fleet.wait_everywhere({"busy", "idle"})

    async def load_busy(stop: asyncio.Event) -> None:
        """Keep 8 tasks in flight on busy (4 workers): its load stays near 2 until stopped."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{fleet.backends['busy'].port}") as ch:
            stub = pb_grpc.ComputeStub(ch)

            async def worker() -> None:
                while not stop.is_set():
                    await stub.ComputeTask(pb.TaskRequest(input="x"))

            await asyncio.gather(*(worker() for _ in range(8)))

    async def loads_at_b() -> dict[str, float]:
        async with grpc.aio.insecure_channel(fleet.target(b)) as channel:
            reply = await pb_grpc.LoadBalancerStub(channel).ListBackends(pb.ListBackendsRequest())
            return {x.id: x.load for x in reply.backends}

    async def run() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(load_busy(stop))
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            while (await loads_at_b()).get("busy", 0.0) <= 1.0:
                assert loop.time() - start < 10, "B never heard busy's load"
                await asyncio.sleep(0.02)
            seen = loop.time() - start
            assert await asyncio.to_thread(get_backend, fleet, b) == "idle"
        finally:
            stop.set()
            await task
        return seen

    seen = asyncio.run(run())
    print(f"\n[replicas] busy's load (reported to A) seen at B after {seen * 1000:.0f} ms")
    assert get_backend(fleet, b) == "idle"  # least_load at B avoids what A heard


def test_the_per_service_limit_counts_every_replicas_backends(fleet: Fleet) -> None:
    """``--max-backends`` is checked against the shared view, not this replica's own."""
    a, b = fleet.start_replicas(2, "--max-backends", "2")
    fleet.register(a, "m1", 9301)
    fleet.register(a, "m2", 9302)
    wait_until(lambda: {"m1", "m2"} <= fleet.live_ids(b), 5, "m1, m2 at b")
    with pytest.raises(grpc.RpcError) as refused:
        fleet.register(b, "m3", 9303)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "already has 2 backends" in refused.value.details()  # type: ignore[attr-defined]
    # Neither registers, so both expire (ttl 1.5 s) and the service has room again.
    wait_until(lambda: not fleet.live_ids(b), 10, "m1, m2 to expire")
    fleet.register(b, "m3", 9303)
