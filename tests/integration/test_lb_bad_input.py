"""Bad input over the wire: a clear status naming the field, state unchanged, still serving."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import grpc
import pytest

from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc


@pytest.fixture
async def lb() -> AsyncIterator[pb_grpc.LoadBalancerStub]:
    server = LbServer(LbConfig(port=0, policy="round_robin"))
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        await stub.RegisterBackend(pb.BackendInfo(id="good", address="127.0.0.1", port=9000))
        yield stub
    await server.stop(0)


async def live(stub: pb_grpc.LoadBalancerStub) -> list[tuple[str, float]]:
    reply = await stub.ListBackends(pb.ListBackendsRequest())
    return [(b.id, b.load) for b in reply.backends]


@pytest.mark.parametrize(
    ("info", "field"),
    [
        (pb.BackendInfo(id="", address="127.0.0.1", port=1), "id"),
        (pb.BackendInfo(id="x", address="no such host!", port=1), "address"),
        (pb.BackendInfo(id="x", address="127.0.0.1", port=70000), "port"),
        (pb.BackendInfo(id="x", address="127.0.0.1", port=1, load=math.nan), "load"),
        (pb.BackendInfo(id="x", address="127.0.0.1", port=1, service_name="s" * 300), "service"),
    ],
)
async def test_bad_registration(lb: pb_grpc.LoadBalancerStub, info: pb.BackendInfo, field: str):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lb.RegisterBackend(info)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")
    assert await live(lb) == [("good", 0.0)]


async def test_bad_and_unknown_reports(lb: pb_grpc.LoadBalancerStub) -> None:
    for report in (pb.LoadReport(id="good", load=-1), pb.LoadReport(id="good", load=math.inf)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await lb.ReportLoad(report)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "load" in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lb.ReportLoad(pb.LoadReport(id="ghost", load=0.5))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert await live(lb) == [("good", 0.0)]
    await lb.ReportLoad(pb.LoadReport(id="good", load=0.25))
    assert await live(lb) == [("good", 0.25)]


async def test_stream_that_switches_identity_is_refused(lb: pb_grpc.LoadBalancerStub) -> None:
    await lb.RegisterBackend(pb.BackendInfo(id="other", address="127.0.0.1", port=9001))

    async def reports() -> AsyncIterator[pb.LoadReport]:
        yield pb.LoadReport(id="good", load=0.5)
        yield pb.LoadReport(id="other", load=0.5)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lb.StreamLoad(reports())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # The broken stream marks "good" down; "other" is untouched.
    assert [b for b, _ in await live(lb)] == ["other"]


async def test_unknown_deregister_and_oversized_message(lb: pb_grpc.LoadBalancerStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lb.Deregister(pb.DeregisterRequest(id="ghost"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await lb.GetBackend(pb.ServerRequest(client_id="x" * 100_000))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    reply = await lb.GetBackend(pb.ServerRequest(client_id="fine"))
    assert reply.id == "good"
