"""``lookaside.channel``: a ``grpc.aio.Channel`` whose calls go where the LB says.

::

    channel = lookaside.channel("127.0.0.1:50051", "echo")
    stub = echo_pb2_grpc.EchoStub(channel)       # any generated stub
    reply = await stub.Say(echo_pb2.EchoRequest(text="hi"), timeout=2)

Each call goes to the backend the LB's policy for the service picks: by
default from a local copy of the live set (``WatchBackends``, the fast path),
through ``GetBackend`` while no set has arrived or when ``fast_path=False``.
Retries follow :mod:`lookaside.client.retry`; per-backend outcomes and
latencies go back to the LB (``ReportClientStats``) for outlier ejection.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

import grpc
from grpc import aio

from lookaside.client.backends import Deserializer, MethodKey, Serializer
from lookaside.client.calls import (
    CallOptions,
    Metadata,
    StreamStreamCall,
    StreamUnaryCall,
    UnaryStreamCall,
    UnaryUnaryCall,
)
from lookaside.client.config import ClientConfig
from lookaside.client.router import Router
from lookaside.model import DEFAULT_SERVICE
from lookaside.security import TlsConfig, Token
from lookaside.v1 import load_balancer_pb2 as pb


class _MultiCallable:
    """Makes one call object per call, of the type its subclass names."""

    __slots__ = ("_key", "_router")
    _call_type: type[UnaryUnaryCall | UnaryStreamCall | StreamUnaryCall | StreamStreamCall]

    def __init__(self, router: Router, key: MethodKey) -> None:
        self._router = router
        self._key = key

    def __call__(
        self,
        request: Any = None,
        timeout: float | None = None,
        metadata: Metadata = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        """``request`` is the request, or for client streaming the request iterator."""
        options = CallOptions(timeout, metadata, credentials, wait_for_ready, compression)
        return self._call_type(self._router, self._key, request, options)


class _UnaryUnary(_MultiCallable, aio.UnaryUnaryMultiCallable[Any, Any]):
    __slots__ = ()
    _call_type = UnaryUnaryCall


class _UnaryStream(_MultiCallable, aio.UnaryStreamMultiCallable[Any, Any]):
    __slots__ = ()
    _call_type = UnaryStreamCall


class _StreamUnary(_MultiCallable, aio.StreamUnaryMultiCallable[Any, Any]):
    __slots__ = ()
    _call_type = StreamUnaryCall


class _StreamStream(_MultiCallable, aio.StreamStreamMultiCallable[Any, Any]):
    __slots__ = ()
    _call_type = StreamStreamCall


class Channel(aio.Channel):
    """A ``grpc.aio.Channel`` over the backends the LB hands out for one service."""

    def __init__(
        self,
        lb_target: str,
        service: str = DEFAULT_SERVICE,
        config: ClientConfig | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.router = Router(lb_target, service, config or ClientConfig(), rng=rng, clock=clock)
        self._closed = False

    @property
    def service(self) -> str:
        return self.router.service

    @property
    def client_id(self) -> str:
        return self.router.client_id

    def unary_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool | None = False,
    ) -> _UnaryUnary:
        return _UnaryUnary(
            self.router, ("unary_unary", method, request_serializer, response_deserializer)
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool | None = False,
    ) -> _UnaryStream:
        return _UnaryStream(
            self.router, ("unary_stream", method, request_serializer, response_deserializer)
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool | None = False,
    ) -> _StreamUnary:
        return _StreamUnary(
            self.router, ("stream_unary", method, request_serializer, response_deserializer)
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Serializer = None,
        response_deserializer: Deserializer = None,
        _registered_method: bool | None = False,
    ) -> _StreamStream:
        return _StreamStream(
            self.router, ("stream_stream", method, request_serializer, response_deserializer)
        )

    # --- state ---

    def backends(self) -> list[pb.BackendInfo]:
        """The live set the fast path holds now (empty before the first one arrives)."""
        watcher = self.router.watcher
        return watcher.backends() if watcher is not None else []

    async def wait_for_backends(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until the fast path holds at least ``count`` backends (tools and tests)."""
        watcher = self.router.watcher
        if watcher is None:
            raise RuntimeError("this channel was made with fast_path=False")
        self.router.start()
        deadline = time.monotonic() + timeout
        while watcher.size < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{watcher.size} backend(s) after {timeout}s, wanted {count}")
            await asyncio.sleep(0.01)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """READY while the fast path holds backends; else the state of the channel to the LB."""
        if try_to_connect:
            self.router.start()
        if self.backends():
            return grpc.ChannelConnectivity.READY
        return self.router.lb_channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self.router.lb_channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        """Wait until a call could be sent: backends known, or the LB reachable."""
        if self.router.watcher is not None:
            self.router.start()
            await self.router.watcher.ready.wait()
        else:
            await self.router.lb_channel.channel_ready()

    async def flush_stats(self) -> None:
        """Send the outcomes counted so far to the LB now."""
        if self.router.reporter is not None:
            await self.router.reporter.flush()

    async def close(self, grace: float | None = None) -> None:
        """Close every channel; calls still running get ``grace`` seconds (None: none)."""
        if not self._closed:
            self._closed = True
            await self.router.close(grace)

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def channel(
    lb_target: str,
    service: str = DEFAULT_SERVICE,
    *,
    token: Token | None = None,
    tls: TlsConfig | None = None,
    config: ClientConfig | None = None,
    rng: random.Random | None = None,
    **options: Any,
) -> Channel:
    """A ``grpc.aio.Channel`` for ``service``, balanced by the LB at ``lb_target``.

    ``lb_target`` is ``HOST:PORT`` or several LB replicas ``a:1,b:2``.
    ``options`` are :class:`ClientConfig` fields (``fast_path``,
    ``service_config``, ``client_id``, ...); or pass a whole ``config``.
    """
    base = config or ClientConfig()
    overrides: dict[str, Any] = dict(options)
    if token is not None:
        overrides["token"] = token
    if tls is not None:
        overrides["tls"] = tls
    if overrides:
        base = replace(base, **overrides)
    return Channel(lb_target, service, base, rng=rng)
