"""Over the wire: a backend id belongs to the address it was registered from.

The LB listens on ``::`` (dual stack), so one test process is two callers:
``127.0.0.1`` (the owner) and ``::1`` (a stranger). Rule and limits:
:mod:`lookaside.lb.ownership`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

ME = pb.BackendInfo(id="me", address="127.0.0.1", port=9000)


@dataclass
class Callers:
    server: LbServer
    owner: pb_grpc.LoadBalancerStub  # dials 127.0.0.1
    stranger: pb_grpc.LoadBalancerStub  # dials ::1


@pytest.fixture
async def callers() -> AsyncIterator[Callers]:
    server = LbServer(LbConfig(host="::", port=0, policy="round_robin"))
    try:
        port = await server.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as mine,
        grpc.aio.insecure_channel(f"[::1]:{port}") as theirs,
    ):
        yield Callers(server, pb_grpc.LoadBalancerStub(mine), pb_grpc.LoadBalancerStub(theirs))
    await server.stop(0)


async def status_of(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def reports(*items: pb.LoadReport) -> AsyncIterator[pb.LoadReport]:
    for item in items:
        yield item


async def test_a_stranger_cannot_take_over_report_or_deregister(callers: Callers) -> None:
    owner, stranger, registry = callers.owner, callers.stranger, callers.server.registry
    await owner.RegisterBackend(ME, timeout=5)
    await owner.ReportLoad(pb.LoadReport(id="me", load=0.25), timeout=5)

    # Same id, same advertised address and port: still refused from another caller.
    assert await status_of(stranger.RegisterBackend(ME, timeout=5)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    elsewhere = pb.BackendInfo(id="me", address="127.0.0.2", port=9001)
    assert await status_of(stranger.RegisterBackend(elsewhere, timeout=5)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    denied = grpc.StatusCode.PERMISSION_DENIED
    fake = pb.LoadReport(id="me", load=50.0)
    assert await status_of(stranger.ReportLoad(fake, timeout=5)) == denied
    assert await status_of(stranger.StreamLoad(reports(fake), timeout=5)) == denied
    assert await status_of(stranger.Deregister(pb.DeregisterRequest(id="me"), timeout=5)) == denied

    endpoint = registry.get("me")
    assert endpoint is not None
    assert (endpoint.address, endpoint.port, endpoint.load) == ("127.0.0.1", 9000, 0.25)

    # The owner may still do all of it; once it has left, the id is free for anyone.
    await owner.StreamLoad(reports(pb.LoadReport(id="me", load=0.5)), timeout=5)
    await owner.RegisterBackend(ME, timeout=5)
    await owner.Deregister(pb.DeregisterRequest(id="me"), timeout=5)
    assert registry.get("me") is None
    await stranger.RegisterBackend(ME, timeout=5)
    assert await status_of(owner.ReportLoad(pb.LoadReport(id="me"), timeout=5)) == denied


async def test_an_owner_cannot_move_a_live_id_to_another_address(callers: Callers) -> None:
    await callers.owner.RegisterBackend(ME, timeout=5)
    moved = pb.BackendInfo(id="me", address="127.0.0.1", port=9001)
    assert await status_of(callers.owner.RegisterBackend(moved, timeout=5)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    assert [e.port for e in callers.server.registry.endpoints("compute")] == [9000]


async def test_expired_lease_frees_the_id(callers: Callers) -> None:
    await callers.owner.RegisterBackend(ME, timeout=5)
    callers.server.registry.mark_down("me")  # as when its load stream breaks
    await callers.stranger.RegisterBackend(ME, timeout=5)
    await callers.stranger.ReportLoad(pb.LoadReport(id="me", load=0.1), timeout=5)
