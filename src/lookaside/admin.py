"""Small operator calls against a running LB: list backends, wait for them."""

from __future__ import annotations

import asyncio
import time

from grpc import aio

from lookaside.model import DEFAULT_SERVICE
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc


async def list_backends(
    lb_target: str, service: str = DEFAULT_SERVICE, timeout: float = 2.0
) -> pb.ListBackendsResponse:
    async with aio.insecure_channel(lb_target) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        return await stub.ListBackends(
            pb.ListBackendsRequest(service_name=service), timeout=timeout
        )


async def wait_for_backends(
    lb_target: str,
    count: int,
    service: str = DEFAULT_SERVICE,
    timeout: float = 30.0,
    ids: set[str] | None = None,
) -> list[pb.BackendInfo]:
    """Poll ``ListBackends`` until ``count`` backends (or all of ``ids``) are live."""
    deadline = time.monotonic() + timeout
    async with aio.insecure_channel(lb_target) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        while True:
            seen: list[pb.BackendInfo] = []
            try:
                reply = await stub.ListBackends(
                    pb.ListBackendsRequest(service_name=service), timeout=2.0
                )
                seen = list(reply.backends)
            except aio.AioRpcError:
                pass
            live = {b.id for b in seen}
            if (ids is not None and ids <= live) or (ids is None and len(seen) >= count):
                return seen
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(seen)} of {count} backends registered with {lb_target} after {timeout}s"
                )
            await asyncio.sleep(0.05)
