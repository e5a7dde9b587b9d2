"""A backend's lease id is the same on every LB replica: it survives a failover, and no
replica lets another caller undo the registration. Real replicas over a real etcd.

All calls come from this process (127.0.0.1), so the seed-era rule (ownership by
caller IP) cannot tell the backend from the intruder: only the lease id can.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio

from lookaside.bench.etcd_cluster import EtcdCluster
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.replica_fleet import Fleet, running_fleet

INFO = pb.BackendInfo(id="owned", address="127.0.0.1", port=9400)


@pytest.fixture
def fleet(etcd: EtcdCluster, tmp_path: Path) -> Iterator[Fleet]:
    yield from running_fleet(etcd, tmp_path)


class Backend:
    """The backend's side, as raw calls: its registration, lease id and load stream."""

    def __init__(self, replica: ServerProcess) -> None:
        self.channel = aio.insecure_channel(f"127.0.0.1:{replica.port}")
        self.stub = pb_grpc.LoadBalancerStub(self.channel)
        self.stopped = asyncio.Event()
        self.sent = 0

    async def reports(self, lease_id: str) -> AsyncIterator[pb.LoadReport]:
        while not self.stopped.is_set():
            self.sent += 1
            yield pb.LoadReport(id=INFO.id, load=0.25, lease_id=lease_id)
            await asyncio.sleep(0.1)

    async def close(self) -> None:
        self.stopped.set()
        await self.channel.close(None)


def with_lease(lease_id: str) -> pb.BackendInfo:
    """The backend's registration naming a lease (a renewal, or a forged one)."""
    info = pb.BackendInfo()
    info.CopyFrom(INFO)
    info.lease_id = lease_id
    return info


async def listed(stub: pb_grpc.LoadBalancerStub) -> bool:
    reply = await stub.ListBackends(pb.ListBackendsRequest(), timeout=5)
    return any(b.id == INFO.id for b in reply.backends)


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 5) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def refused(call: Awaitable[object], code: grpc.StatusCode) -> str:
    with pytest.raises(aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value
    return str(error.value.details())


def test_the_lease_id_survives_a_failover_and_guards_the_registration_everywhere(
    fleet: Fleet,
) -> None:
    a, b = fleet.start_replicas(2)

    async def scenario() -> None:
        at_a, at_b = Backend(a), Backend(b)
        try:
            lease_id = (await at_a.stub.RegisterBackend(INFO, timeout=5)).lease_id
            assert lease_id
            stream_a = asyncio.ensure_future(at_a.stub.StreamLoad(at_a.reports(lease_id)))
            await until(lambda: listed(at_b.stub), "B to list the backend")

            # An intruder at B, before and after A dies: wrong lease, nothing changes.
            intruder = pb.DeregisterRequest(id=INFO.id, lease_id="0" * 32)
            detail = await refused(
                at_b.stub.Deregister(intruder, timeout=5), grpc.StatusCode.PERMISSION_DENIED
            )
            assert "another lease" in detail
            a.kill()  # the backend's stream to A breaks; its record outlives A's lease
            with pytest.raises(aio.AioRpcError):
                await stream_a
            await refused(
                at_b.stub.Deregister(intruder, timeout=5), grpc.StatusCode.PERMISSION_DENIED
            )
            stolen = with_lease("1" * 32)
            await refused(
                at_b.stub.RegisterBackend(stolen, timeout=5), grpc.StatusCode.ALREADY_EXISTS
            )
            hijack = at_b.stub.StreamLoad(at_b.reports("2" * 32))
            await refused(hijack, grpc.StatusCode.PERMISSION_DENIED)
            assert await listed(at_b.stub)

            # The backend itself moves to B with its original lease id.
            stream_b = asyncio.ensure_future(at_b.stub.StreamLoad(at_b.reports(lease_id)))
            renewed = await at_b.stub.RegisterBackend(with_lease(lease_id), timeout=5)
            assert renewed.lease_id == lease_id  # kept, though B never saw the id minted
            await asyncio.sleep(3.5)  # past A's etcd lease (2 s) and the grace (1 s)
            assert await listed(at_b.stub), "B dropped the backend it took over"
            assert not stream_b.done()
            done = await at_b.stub.Deregister(
                pb.DeregisterRequest(id=INFO.id, lease_id=lease_id), timeout=5
            )
            assert done.success
            assert not await listed(at_b.stub)
            at_b.stopped.set()
            await stream_b
        finally:
            await at_a.close()
            await at_b.close()

    asyncio.run(scenario())
