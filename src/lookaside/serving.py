"""Server scaffolding shared by the LB and the backends.

Both are asyncio gRPC servers that also answer ``grpc.health.v1`` (SERVING once
ready; tools such as grpc_health_probe wait on it) and server reflection (so
grpcurl works without the .proto), and both shut down on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Sequence
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def new_server(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: Sequence[aio.ServerInterceptor[Any, Any]] = (),
) -> aio.Server:
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    return aio.server(options=options, interceptors=list(interceptors))


#: grpc_health.v1.health.aio.HealthServicer (its stubs do not describe the aio module).
HealthServicer = Any


def add_health_and_reflection(
    server: aio.Server, service_full_names: Sequence[str]
) -> HealthServicer:
    """Register health (initially NOT_SERVING) and reflection for the given services."""
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection(
        (*service_full_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return servicer


async def set_serving(
    servicer: HealthServicer, service_full_names: Sequence[str], serving: bool
) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *service_full_names):
        await servicer.set(name, status)


def bind(
    server: aio.Server,
    host: str,
    port: int,
    credentials: grpc.ServerCredentials | None = None,
) -> int:
    """Listen on host:port (0 = any free port) and return the real port."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = (
        server.add_secure_port(target, credentials)
        if credentials is not None
        else server.add_insecure_port(target)
    )
    if bound == 0:
        raise OSError(f"could not listen on {target}")
    return bound


async def wait_for_signal() -> signal.Signals:
    """Return when SIGTERM or SIGINT arrives (the first one wins)."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine on uvloop when available, else asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional (Linux only)
        return asyncio.run(main)
    with contextlib.suppress(AttributeError):
        return uvloop.run(main)
    return asyncio.run(main)  # pragma: no cover
