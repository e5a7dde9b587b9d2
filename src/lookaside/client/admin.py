"""Small operator calls against a running LB: list backends, wait for them.

``token`` is the LB's client token (ListBackends is a client RPC) and ``tls``
the caller's TLS settings (``ca``, and ``cert``/``key`` for mutual TLS); both
default to none, for an LB that runs open and plaintext.
"""

from __future__ import annotations

import asyncio
import time

from grpc import StatusCode, aio

from lookaside.channels import dial
from lookaside.model import DEFAULT_SERVICE
from lookaside.security import TlsConfig, Token, bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc


def _dial_lb(lb_target: str, tls: TlsConfig | None) -> aio.Channel:
    return dial(lb_target, tls.channel_credentials() if tls is not None else None)


async def list_backends(
    lb_target: str,
    service: str = DEFAULT_SERVICE,
    timeout: float = 2.0,
    *,
    token: Token | None = None,
    tls: TlsConfig | None = None,
) -> pb.ListBackendsResponse:
    async with _dial_lb(lb_target, tls) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        return await stub.ListBackends(
            pb.ListBackendsRequest(service_name=service),
            timeout=timeout,
            metadata=bearer_metadata(token),
        )


async def wait_for_backends(
    lb_target: str,
    count: int,
    service: str = DEFAULT_SERVICE,
    timeout: float = 30.0,
    ids: set[str] | None = None,
    *,
    token: Token | None = None,
    tls: TlsConfig | None = None,
) -> list[pb.BackendInfo]:
    """Poll ``ListBackends`` until ``count`` backends (or all of ``ids``) are live."""
    deadline = time.monotonic() + timeout
    async with _dial_lb(lb_target, tls) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        while True:
            seen: list[pb.BackendInfo] = []
            try:
                reply = await stub.ListBackends(
                    pb.ListBackendsRequest(service_name=service),
                    timeout=2.0,
                    metadata=bearer_metadata(token),
                )
                seen = list(reply.backends)
            except aio.AioRpcError as error:
                if error.code() not in (StatusCode.UNAVAILABLE, StatusCode.DEADLINE_EXCEEDED):
                    raise  # a wrong token or bad request will not fix itself
            live = {b.id for b in seen}
            if (ids is not None and ids <= live) or (ids is None and len(seen) >= count):
                return seen
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(seen)} of {count} backends registered with {lb_target} after {timeout}s"
                )
            await asyncio.sleep(0.05)
