"""BackendAgent in this process, on real loopback sockets: what the interceptor counts,
whose trailers survive, health followed into the LB, and the backend's /metrics."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpc import aio

from lookaside import BackendAgent
from lookaside.backend.server import BackendConfig, BackendServer
from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from tests.integration.userprocs import until
from tests.userservice import echo_pb2 as echo_pb
from tests.userservice import echo_pb2_grpc as echo_grpc
from tests.userservice.servicer import EchoServicer

ECHO = "userservice.v1.Echo"


class TrailingEcho(EchoServicer):
    async def Say(self, request: Any, context: Any) -> echo_pb.EchoReply:
        context.set_trailing_metadata((("x-user", "kept"),))
        return await super().Say(request, context)


@pytest.fixture
async def lb() -> AsyncIterator[LbServer]:
    server = LbServer(LbConfig(host="127.0.0.1", port=0, ttl=2, report_interval=0.2))
    await server.start()
    yield server
    await server.stop(0)


async def requests(*texts: str) -> AsyncIterator[echo_pb.EchoRequest]:
    for text in texts:
        yield echo_pb.EchoRequest(text=text)


async def test_every_call_type_is_counted_and_user_trailers_survive(lb: LbServer) -> None:
    agent = BackendAgent(f"127.0.0.1:{lb.port}", service=ECHO, port=0, report_interval=0.2)
    server = aio.server(interceptors=[agent.aio_interceptor])
    echo_grpc.add_EchoServicer_to_server(TrailingEcho("a1"), server)
    agent.attach(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await agent.start(port)
    try:
        await until(lambda: lb.registry.get(f"127.0.0.1:{port}") is not None, 10, "register")
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = echo_grpc.EchoStub(channel)
            call = stub.Say(echo_pb.EchoRequest(text="a"))
            assert (await call).text == "a"
            assert ("x-user", "kept") in tuple(await call.trailing_metadata())
            assert len([r async for r in stub.Count(echo_pb.EchoRequest(text="c", count=2))]) == 2
            assert (await stub.Gather(requests("x", "y"))).text == "x+y"
            assert len([r async for r in stub.Chat(requests("p", "q"))]) == 2
            with pytest.raises(aio.AioRpcError):
                await stub.Say(echo_pb.EchoRequest(text="f", fail_code=9))
        # The client may see the last status before the interceptor's bookkeeping of it ran.
        await until(
            lambda: (agent.stats.finished, agent.stats.failed, agent.stats.in_flight) == (5, 1, 0),
            5,
            "every call counted: 5 finished, 1 failed, none in flight",
        )

        backend_id = f"127.0.0.1:{port}"
        await agent.health.set("", 2)  # NOT_SERVING, as the application would
        await until(
            lambda: lb.balancer.live(ECHO) == () and lb.registry.get(backend_id) is not None,
            5,
            "NOT_SERVING in the LB",
        )
        await agent.health.set(ECHO, 1)  # the service SERVING does not outvote the server
        await agent.health.set("", 1)
        await until(lambda: len(lb.balancer.live(ECHO)) == 1, 5, "SERVING again in the LB")
        endpoint = lb.registry.get(backend_id)
        assert endpoint is not None and endpoint.metrics.latency_ms > 0
    finally:
        await agent.stop(grace=1)
    assert lb.registry.get(f"127.0.0.1:{port}") is None


async def test_demo_backend_serves_prometheus_metrics(lb: LbServer) -> None:
    backend = BackendServer(
        BackendConfig(lb=f"127.0.0.1:{lb.port}", id="m1", admin_port=0, drain_seconds=0)
    )
    port = await backend.start()
    try:
        async with aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

            await pb_grpc.ComputeStub(channel).ComputeTask(pb.TaskRequest(input="ab"))
        await until(lambda: lb.registry.get("m1") is not None, 10, "registration")
        url = f"http://127.0.0.1:{backend.admin_port}/metrics"
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
        body = text.decode()
        assert 'lookaside_backend_requests_total{backend="m1",service="compute"} 1.0' in body
        assert "lookaside_backend_serving" in body and "lookaside_backend_registered" in body
    finally:
        await backend.stop()
