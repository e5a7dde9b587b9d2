"""Server scaffolding shared by the LB and the backends.

Both are asyncio gRPC servers that also answer ``grpc.health.v1`` (SERVING once
ready; tools such as grpc_health_probe wait on it) and server reflection (so
grpcurl works without the .proto), and both shut down on SIGTERM/SIGINT.

Requests to lookaside's own services that are not valid protobuf are answered
``INVALID_ARGUMENT`` naming the expected message (gRPC's default would be
``UNKNOWN`` with a Python exception in the text): see
:class:`DecodeErrorInterceptor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from lookaside import gc_pauses

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
OWN_METHODS_PREFIX = "/lookaside.v1."

#: Base class and handler type of an aio server interceptor (generic only to the type checker).
if TYPE_CHECKING:
    ServerInterceptor = aio.ServerInterceptor[Any, Any]
    RpcHandler = grpc.RpcMethodHandler[Any, Any]
else:
    ServerInterceptor = aio.ServerInterceptor
    RpcHandler = grpc.RpcMethodHandler
_Interceptor = ServerInterceptor
_Handler = RpcHandler
_Context = aio.ServicerContext[Any, Any]


def new_server(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: Sequence[_Interceptor] = (),
) -> aio.Server:
    """A server for lookaside's services; undecodable requests get ``INVALID_ARGUMENT``."""
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    chain = [*interceptors, DecodeErrorInterceptor()]
    return aio.server(options=options, interceptors=chain)


class DecodeErrorInterceptor(_Interceptor):
    """Parse requests to ``lookaside.v1`` methods inside the call, so bad bytes are
    answered ``INVALID_ARGUMENT`` ("request: not a valid lookaside.v1.X message").

    gRPC parses a request before the servicer runs and turns a parse error into
    ``UNKNOWN``; here the handler receives raw bytes and parses them itself.
    Only unary-request and client-streaming methods exist in lookaside.v1.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or handler.request_deserializer is None
            or handler.response_streaming
            or not handler_call_details.method.startswith(OWN_METHODS_PREFIX)
        ):
            return handler
        parse = handler.request_deserializer
        what = handler_call_details.method.rsplit("/", 1)[-1]

        async def decode(raw: bytes, context: _Context) -> Any:
            try:
                return parse(raw)
            except Exception:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"request: not a valid message for {what} (protobuf parse failed)",
                )

        # The handler came from an aio servicer: its behaviours are coroutine functions.
        if handler.request_streaming:
            behaviour: Any = handler.stream_unary

            async def decoded(raws: AsyncIterator[bytes], context: _Context) -> AsyncIterator[Any]:
                async for raw in raws:
                    yield await decode(raw, context)

            async def stream_unary(raws: AsyncIterator[bytes], context: _Context) -> Any:
                return await behaviour(decoded(raws, context), context)

            return grpc.stream_unary_rpc_method_handler(
                stream_unary, response_serializer=handler.response_serializer
            )
        unary: Any = handler.unary_unary

        async def unary_unary(raw: bytes, context: _Context) -> Any:
            return await unary(await decode(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, response_serializer=handler.response_serializer
        )


#: grpc_health.v1.health.aio.HealthServicer (its stubs do not describe the aio module).
HealthServicer = Any


#: The current reflection service, which grpcurl asks for first; grpcio-reflection only
#: ships ``v1alpha``, whose messages are the same on the wire.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


def add_health_and_reflection(
    server: aio.Server, service_full_names: Sequence[str]
) -> HealthServicer:
    """Register health (initially NOT_SERVING) and reflection (``v1`` and ``v1alpha``)."""
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    names = (*service_full_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    # One servicer answers both names: v1 is v1alpha under another package name.
    v1 = reflection.aio.ReflectionServicer(names)  # type: ignore[attr-defined]
    method = grpc.stream_stream_rpc_method_handler(
        v1.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(REFLECTION_V1, {"ServerReflectionInfo": method}),)
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


class StartupError(Exception):
    """A server cannot start for a reason retrying will not heal (the CLI prints one line)."""


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_os_error(error: OSError) -> str:
    """``address already in use`` rather than ``[Errno 98] Address already in use``."""
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror})"
    if error.errno is not None:
        return os.strerror(error.errno).lower()
    return str(error)


def why_cannot_bind(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None if it can.

    Asked with a plain socket before gRPC tries, because gRPC's own failure is a
    C-level log line plus "Failed to bind" with no reason a program can read.
    ``SO_REUSEADDR`` as gRPC sets it, so a port in TIME_WAIT is not reported taken.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return describe_os_error(error)
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EACCES:
                    return "permission denied (ports below 1024 need privileges)"
                return describe_os_error(error)
    return None


def bind(
    server: aio.Server,
    host: str,
    port: int,
    credentials: grpc.ServerCredentials | None = None,
) -> int:
    """Listen on host:port (0 = any free port) and return the real port.

    Failure is a :class:`StartupError` with one line such as
    ``cannot listen on 127.0.0.1:50051: address already in use``.
    """
    target = join_host_port(host, port)
    reason = why_cannot_bind(host, port)
    if reason is not None:
        raise StartupError(f"cannot listen on {target}: {reason}")
    try:
        bound = (
            server.add_secure_port(target, credentials)
            if credentials is not None
            else server.add_insecure_port(target)
        )
    except RuntimeError:  # grpcio >= 1.55 raises "Failed to bind to address ..."
        bound = 0
    if bound == 0:  # taken between our check and gRPC's bind
        raise StartupError(f"cannot listen on {target}: gRPC could not bind it")
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
    """Run a command's coroutine on uvloop when available, else asyncio's loop.

    The collector is settled first (:func:`lookaside.gc_pauses.settle`): these
    are long-running servers, and a full collection is an event-loop pause.
    """
    gc_pauses.settle()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional (Linux only)
        return asyncio.run(main)
    with contextlib.suppress(AttributeError):
        return uvloop.run(main)
    return asyncio.run(main)  # pragma: no cover
