"""Past every documented limit the answer is RESOURCE_EXHAUSTED, and the server keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from lookaside.backend.compute import MAX_INPUT_CHARS
from lookaside.backend.server import BackendConfig, BackendServer
from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture
async def small_lb() -> AsyncIterator[pb_grpc.LoadBalancerStub]:
    config = LbConfig(port=0, max_backends=2, max_streams=1, max_message_bytes=1024)
    server = LbServer(config)
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.LoadBalancerStub(channel)
    await server.stop(0)


def info(backend_id: str, port: int, service: str = "") -> pb.BackendInfo:
    return pb.BackendInfo(id=backend_id, address="127.0.0.1", port=port, service_name=service)


async def test_max_backends_per_service(small_lb: pb_grpc.LoadBalancerStub) -> None:
    await small_lb.RegisterBackend(info("a", 1), timeout=5)
    await small_lb.RegisterBackend(info("b", 2), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await small_lb.RegisterBackend(info("c", 3), timeout=5)
    assert caught.value.code() == EXHAUSTED
    assert "limit is 2" in (caught.value.details() or "")
    await small_lb.RegisterBackend(info("a", 1), timeout=5)  # renewal is not a new backend
    await small_lb.RegisterBackend(info("c", 3, "other"), timeout=5)  # the limit is per service
    listed = await small_lb.ListBackends(pb.ListBackendsRequest(), timeout=5)
    assert [b.id for b in listed.backends] == ["a", "b"]


async def test_max_concurrent_load_streams(small_lb: pb_grpc.LoadBalancerStub) -> None:
    await small_lb.RegisterBackend(info("a", 1), timeout=5)
    await small_lb.RegisterBackend(info("b", 2), timeout=5)
    first = small_lb.StreamLoad(timeout=10)
    await first.write(pb.LoadReport(id="a", load=0.1))
    second = small_lb.StreamLoad(timeout=10)
    await second.write(pb.LoadReport(id="b", load=0.1))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await second
    assert caught.value.code() == EXHAUSTED
    await first.done_writing()
    await first
    # The slot is free again once the first stream has closed.
    third = small_lb.StreamLoad(timeout=10)
    await third.write(pb.LoadReport(id="b", load=0.2))
    await third.done_writing()
    await third


async def test_max_message_bytes(small_lb: pb_grpc.LoadBalancerStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await small_lb.RegisterBackend(info("x" * 2000, 1), timeout=5)
    assert caught.value.code() == EXHAUSTED
    await small_lb.RegisterBackend(info("fits", 1), timeout=5)


async def test_compute_input_limit_names_the_field() -> None:
    backend = BackendServer(BackendConfig(lb="127.0.0.1:1", port=0, drain_seconds=0))
    port = await backend.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ComputeStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.ComputeTask(pb.TaskRequest(input="x" * (MAX_INPUT_CHARS + 1)), timeout=5)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (caught.value.details() or "").startswith("input:")
            reply = await stub.ComputeTask(pb.TaskRequest(input="ok"), timeout=5)
            assert reply.result == "ko"
    finally:
        await asyncio.wait_for(backend.stop(), 10)
