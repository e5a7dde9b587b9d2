"""The server interceptor that measures load: every call of every kind, both server APIs.

It wraps the handler of each of the server's own methods (unary and
streaming, either direction) so that :class:`~lookaside.backend.call_stats.CallStats`
sees the call start and end, with whether it failed (an exception, an abort
or a non-OK code set on the context), and so that the call's trailer carries
the ORCA report (gRFC A51 per-call reporting; see :mod:`lookaside.backend.orca`).
The trailer is set when the call starts, so aborted calls carry it too, and set
again when it ends, after whatever trailing metadata the handler set itself.

Health checks, reflection and ORCA's own stream are infrastructure, not load:
they pass through unmeasured.

``grpc.aio.server`` accepts only ``grpc.aio.ServerInterceptor`` and
``grpc.server`` only ``grpc.ServerInterceptor``, hence two small classes over
one set of wrapping rules.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from lookaside.backend.call_stats import CallStats

#: Methods under these prefixes are not counted as load.
UNMEASURED_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.", "/xds.service.orca.v3.")

if TYPE_CHECKING:
    _AioBase = aio.ServerInterceptor[Any, Any]
    _SyncBase = grpc.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _AioBase = aio.ServerInterceptor
    _SyncBase = grpc.ServerInterceptor
    _Handler = grpc.RpcMethodHandler

Trailer = Callable[[], tuple[str, bytes]]
Context = Any  # grpc.ServicerContext or grpc.aio.ServicerContext


def _ok(context: Context) -> bool:
    code = context.code()
    return code is None or code == grpc.StatusCode.OK or code == 0


def _add_trailer(context: Context, trailer: Trailer | None) -> None:
    if trailer is None:
        return
    key, value = trailer()
    own = [item for item in (context.trailing_metadata() or ()) if item[0] != key]
    context.set_trailing_metadata((*own, (key, value)))


class _Call:
    """One call's bookkeeping: counted from start to end, the trailer set at both ends."""

    __slots__ = ("_context", "_started", "_stats", "_trailer", "ok")

    def __init__(self, stats: CallStats, trailer: Trailer | None, context: Context) -> None:
        self._stats, self._trailer, self._context = stats, trailer, context
        self._started = stats.start()
        self.ok = False
        _add_trailer(context, trailer)

    def succeeded(self) -> None:
        """The handler returned: OK unless it set another code on the context."""
        self.ok = _ok(self._context)
        _add_trailer(self._context, self._trailer)

    def left(self) -> None:
        """The client went away (cancelled): not the server's error."""
        self.ok = True

    def end(self) -> None:
        self._stats.finish(self._started, self.ok)


def _rebuild(handler: _Handler, **behaviours: Any) -> _Handler:
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(behaviours["unary_unary"], **serializers)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(behaviours["unary_stream"], **serializers)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(behaviours["stream_unary"], **serializers)
    return grpc.stream_stream_rpc_method_handler(behaviours["stream_stream"], **serializers)


def _behaviour(handler: _Handler) -> Any:
    return (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )


def _measured(method: str) -> bool:
    return not method.startswith(UNMEASURED_PREFIXES)


class AioLoadInterceptor(_AioBase):
    """For ``grpc.aio.server(interceptors=[...])``."""

    def __init__(self, stats: CallStats, trailer: Trailer | None = None) -> None:
        self._stats = stats
        self._trailer = trailer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(handler_call_details)
        if handler is None or not _measured(handler_call_details.method):
            return handler
        return self._wrap(handler)

    def _wrap(self, handler: _Handler) -> _Handler:
        stats, trailer, inner = self._stats, self._trailer, _behaviour(handler)

        async def unary(request_or_iterator: Any, context: Context) -> Any:
            call = _Call(stats, trailer, context)
            try:
                response = await inner(request_or_iterator, context)
                call.succeeded()
                return response
            except asyncio.CancelledError:
                call.left()
                raise
            finally:
                call.end()

        async def streaming(request_or_iterator: Any, context: Context) -> AsyncIterator[Any]:
            call = _Call(stats, trailer, context)
            try:
                result = inner(request_or_iterator, context)
                if inspect.isasyncgen(result):
                    async for item in result:
                        yield item
                else:  # a coroutine that answers with context.write()
                    await result
                call.succeeded()
            except (asyncio.CancelledError, GeneratorExit):
                call.left()
                raise
            finally:
                call.end()

        return _rebuild(
            handler,
            unary_unary=unary,
            stream_unary=unary,
            unary_stream=streaming,
            stream_stream=streaming,
        )


class SyncLoadInterceptor(_SyncBase):
    """For the blocking ``grpc.server(executor, interceptors=[...])``."""

    def __init__(self, stats: CallStats, trailer: Trailer | None = None) -> None:
        self._stats = stats
        self._trailer = trailer

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], _Handler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = continuation(handler_call_details)
        if handler is None or not _measured(handler_call_details.method):
            return handler
        return self._wrap(handler)

    def _wrap(self, handler: _Handler) -> _Handler:
        stats, trailer, inner = self._stats, self._trailer, _behaviour(handler)

        def unary(request_or_iterator: Any, context: Context) -> Any:
            call = _Call(stats, trailer, context)
            try:
                response = inner(request_or_iterator, context)
                call.succeeded()
                return response
            finally:
                call.end()

        def streaming(request_or_iterator: Any, context: Context) -> Iterator[Any]:
            call = _Call(stats, trailer, context)
            try:
                yield from inner(request_or_iterator, context)
                call.succeeded()
            except GeneratorExit:
                call.left()
                raise
            finally:
                call.end()

        return _rebuild(
            handler,
            unary_unary=unary,
            stream_unary=unary,
            unary_stream=streaming,
            stream_stream=streaming,
        )
