"""``lookaside.sync_channel``: the same channel for blocking ``grpc.Channel`` stubs.

There is one implementation: :class:`~lookaside.client.channel.Channel` runs on
an event loop in a background thread that the sync channel owns, and every
blocking call hands its work to that loop and waits for the answer. Errors are
the same ``grpc.RpcError`` objects (with ``code()``, ``details()`` and
``trailing_metadata()``) the async channel raises.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from lookaside.client.channel import Channel, channel
from lookaside.client.config import ClientConfig

_END = object()

if TYPE_CHECKING:  # the blocking multi-callables are generic only in the type stubs
    _UnaryUnaryMultiCallable = grpc.UnaryUnaryMultiCallable[Any, Any]
    _UnaryStreamMultiCallable = grpc.UnaryStreamMultiCallable[Any, Any]
    _StreamUnaryMultiCallable = grpc.StreamUnaryMultiCallable[Any, Any]
    _StreamStreamMultiCallable = grpc.StreamStreamMultiCallable[Any, Any]
else:
    _UnaryUnaryMultiCallable = grpc.UnaryUnaryMultiCallable
    _UnaryStreamMultiCallable = grpc.UnaryStreamMultiCallable
    _StreamUnaryMultiCallable = grpc.StreamUnaryMultiCallable
    _StreamStreamMultiCallable = grpc.StreamStreamMultiCallable


class _Loop:
    """An event loop on a daemon thread, for one sync channel."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="lookaside-channel", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def call(self, make: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        """``make(*args)`` run on the loop, waited for here: the per-call hot path.

        Lighter than :meth:`run`: one wake-up of the loop, one task, and a
        lock released by the task's done callback (no chained futures).
        """
        done = threading.Lock()
        done.acquire()
        finished: list[asyncio.Task[Any]] = []

        def on_done(task: asyncio.Task[Any]) -> None:
            finished.append(task)
            done.release()

        def start() -> None:
            self.loop.create_task(make(*args)).add_done_callback(on_done)

        self.loop.call_soon_threadsafe(start)
        done.acquire()
        return finished[0].result()

    def submit(self, coroutine: Any) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class _Outcome(grpc.Call):
    """The finished call ``with_call`` returns next to the response."""

    def __init__(self, call: Any, initial: Any, trailing: Any, code: Any, details: Any) -> None:
        self._call = call
        self._initial, self._trailing, self._code, self._details = initial, trailing, code, details

    def initial_metadata(self) -> Any:
        return self._initial

    def trailing_metadata(self) -> Any:
        return self._trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float | None:  # type: ignore[override]
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Any) -> bool:
        return False


async def _with_call(call: Any) -> tuple[Any, _Outcome]:
    """The response and the finished call, for ``with_call``."""
    response = await call
    outcome = _Outcome(
        call,
        await call.initial_metadata(),
        await call.trailing_metadata(),
        await call.code(),
        await call.details(),
    )
    return response, outcome


def _aio_kwargs(
    timeout: float | None,
    metadata: Any,
    credentials: Any,
    wait_for_ready: bool | None,
    compression: Any,
) -> dict[str, Any]:
    return {
        "timeout": timeout,
        "metadata": metadata,
        "credentials": credentials,
        "wait_for_ready": wait_for_ready,
        "compression": compression,
    }


class _SyncUnaryUnary(_UnaryUnaryMultiCallable):
    def __init__(self, loop: _Loop, target: Any) -> None:
        self._loop = loop
        self._target = target

    async def _invoke(self, request: Any, kwargs: dict[str, Any]) -> Any:
        return await self._target(request, **kwargs)

    async def _invoke_with_call(self, request: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        return await _with_call(self._target(request, **kwargs))

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.call(self._invoke, request, kwargs)

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> tuple[Any, Any]:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.run(self._invoke_with_call(request, kwargs))

    def future(  # type: ignore[override]
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Future[Any]:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.submit(self._invoke(request, kwargs))


class _Responses:
    """A blocking iterator over an aio response stream (what sync streaming calls return)."""

    def __init__(self, loop: _Loop, call: Any) -> None:
        self._loop = loop
        self._call = call
        self._iterator = call.__aiter__()

    async def _next(self) -> Any:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            return _END

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        item = self._loop.run(self._next())
        if item is _END:
            raise StopIteration
        return item

    def cancel(self) -> bool:
        return self._loop.run(self._cancel())

    async def _cancel(self) -> bool:
        return self._call.cancel()

    def code(self) -> grpc.StatusCode:
        return self._loop.run(self._call.code())

    def details(self) -> str:
        return self._loop.run(self._call.details())

    def trailing_metadata(self) -> Any:
        return self._loop.run(self._call.trailing_metadata())

    def initial_metadata(self) -> Any:
        return self._loop.run(self._call.initial_metadata())


async def _requests(loop: asyncio.AbstractEventLoop, requests: Iterator[Any]) -> Any:
    """A blocking request iterator read on a worker thread, as an async iterator."""
    while True:
        item = await loop.run_in_executor(None, next, requests, _END)
        if item is _END:
            return
        yield item


class _SyncUnaryStream(_UnaryStreamMultiCallable):
    def __init__(self, loop: _Loop, target: Any) -> None:
        self._loop = loop
        self._target = target

    async def _start(self, request: Any, kwargs: dict[str, Any]) -> Any:
        return self._target(request, **kwargs)

    def __call__(  # type: ignore[override]
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> _Responses:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return _Responses(self._loop, self._loop.run(self._start(request, kwargs)))


class _SyncStreamUnary(_StreamUnaryMultiCallable):
    def __init__(self, loop: _Loop, target: Any) -> None:
        self._loop = loop
        self._target = target

    async def _invoke(self, requests: Any, kwargs: dict[str, Any]) -> Any:
        source = _requests(asyncio.get_running_loop(), iter(requests))
        return await self._target(source, **kwargs)

    def __call__(
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.run(self._invoke(request_iterator, kwargs))

    async def _invoke_with_call(self, requests: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        source = _requests(asyncio.get_running_loop(), iter(requests))
        return await _with_call(self._target(source, **kwargs))

    def with_call(
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> tuple[Any, Any]:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.run(self._invoke_with_call(request_iterator, kwargs))

    def future(  # type: ignore[override]
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Future[Any]:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.submit(self._invoke(request_iterator, kwargs))


class _SyncStreamStream(_StreamStreamMultiCallable):
    def __init__(self, loop: _Loop, target: Any) -> None:
        self._loop = loop
        self._target = target

    async def _start(self, requests: Any, kwargs: dict[str, Any]) -> Any:
        source = _requests(asyncio.get_running_loop(), iter(requests))
        return self._target(source, **kwargs)

    def __call__(  # type: ignore[override]
        self,
        request_iterator: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> _Responses:
        kwargs = _aio_kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return _Responses(self._loop, self._loop.run(self._start(request_iterator, kwargs)))


class SyncChannel(grpc.Channel):
    """A blocking ``grpc.Channel`` over a :class:`Channel` on a background loop."""

    def __init__(self, make: Any) -> None:
        self._loop = _Loop()
        self.aio: Channel = self._loop.run(self._make(make))
        self._closed = False

    @staticmethod
    async def _make(make: Any) -> Channel:
        return make()

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> _SyncUnaryUnary:
        return _SyncUnaryUnary(
            self._loop, self.aio.unary_unary(method, request_serializer, response_deserializer)
        )

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> _SyncUnaryStream:
        return _SyncUnaryStream(
            self._loop, self.aio.unary_stream(method, request_serializer, response_deserializer)
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> _SyncStreamUnary:
        return _SyncStreamUnary(
            self._loop, self.aio.stream_unary(method, request_serializer, response_deserializer)
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> _SyncStreamStream:
        return _SyncStreamStream(
            self._loop, self.aio.stream_stream(method, request_serializer, response_deserializer)
        )

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        raise NotImplementedError("subscribe: use wait_for_backends() or the aio channel's state")

    def unsubscribe(self, callback: Any) -> None:
        raise NotImplementedError("unsubscribe")

    def wait_for_backends(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until the fast path holds at least ``count`` backends."""
        self._loop.run(self.aio.wait_for_backends(count, timeout))

    def flush_stats(self) -> None:
        self._loop.run(self.aio.flush_stats())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.run(self.aio.close())
            self._loop.stop()

    def __enter__(self) -> SyncChannel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def sync_channel(
    lb_target: str,
    service: str,
    *,
    config: ClientConfig | None = None,
    **options: Any,
) -> SyncChannel:
    """A blocking ``grpc.Channel`` for ``service``; the same options as :func:`channel`."""
    return SyncChannel(lambda: channel(lb_target, service, config=config, **options))


__all__ = ["SyncChannel", "sync_channel"]
