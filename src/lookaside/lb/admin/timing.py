"""Times ``GetBackend`` for the latency histogram, as a server interceptor.

An interceptor keeps the servicer free of metric code: it wraps only the one
method it times and hands every other handler back untouched. The time runs
from the request bytes to the reply, so it includes parsing and validation.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from grpc import aio
from prometheus_client import Histogram

from lookaside.serving import RpcHandler as _Handler
from lookaside.serving import ServerInterceptor as _Interceptor

GET_BACKEND = "/lookaside.v1.LoadBalancer/GetBackend"


class GetBackendTimer(_Interceptor):
    """Observes each GetBackend's duration in ``histogram``, labelled by status code."""

    def __init__(self, histogram: Histogram) -> None:
        self._ok = histogram.labels(code="OK")
        self._histogram = histogram

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method != GET_BACKEND:
            return handler
        behaviour: Any = handler.unary_unary
        ok = self._ok
        histogram = self._histogram

        async def timed(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            started = time.perf_counter()
            try:
                reply = await behaviour(request, context)
            except BaseException:
                code = context.code()
                name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
                histogram.labels(code=name).observe(time.perf_counter() - started)
                raise
            ok.observe(time.perf_counter() - started)
            return reply

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
