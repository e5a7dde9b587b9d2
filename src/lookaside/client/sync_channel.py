"""``lookaside.sync_channel``: the same channel for blocking ``grpc.Channel`` stubs.

There is one implementation: :class:`~lookaside.client.channel.Channel` runs on
an event loop in a background thread that the sync channel owns, and blocking
calls hand their work to that loop and wait for the answer. One shortcut keeps
blocking unary calls as cheap as on a stock channel: their first attempt runs
in the caller's thread, on a blocking channel to the backend the same local
picker names; a failed first attempt moves to the loop, where the aio call's
retry rules go on from there. Errors are
the same ``grpc.RpcError`` objects (with ``code()``, ``details()`` and
``trailing_metadata()``) the async channel raises.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from lookaside.channels import RECONNECT_OPTIONS
from lookaside.client.backends import MethodKey, target_of
from lookaside.client.calls import CallOptions, UnaryUnaryCall
from lookaside.client.channel import Channel, channel
from lookaside.client.config import ClientConfig
from lookaside.client.router import Router
from lookaside.v1 import load_balancer_pb2 as pb

_END = object()
STATE_POLL_INTERVAL = 0.05  # seconds between looks at the state for subscribers

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


class _SyncMultiCallable:
    """A blocking multi-callable over the aio one: the same call, run on the loop.

    ``streams_requests``: the first argument is a blocking request iterator,
    read on a worker thread. ``streams_responses``: the call returns a blocking
    iterator over the responses; otherwise the response, and ``with_call`` and
    ``future`` are there as on a stock channel.
    """

    streams_requests = False
    streams_responses = False

    def __init__(self, loop: _Loop, target: Any) -> None:
        self._loop = loop
        self._target = target

    def _aio_call(self, first: Any, kwargs: dict[str, Any]) -> Any:
        """Start the aio call (on the loop thread)."""
        if self.streams_requests:
            first = _requests(asyncio.get_running_loop(), iter(first))
        return self._target(first, **kwargs)

    async def _invoke(self, first: Any, kwargs: dict[str, Any]) -> Any:
        return await self._aio_call(first, kwargs)

    async def _invoke_with_call(self, first: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
        return await _with_call(self._aio_call(first, kwargs))

    async def _open(self, first: Any, kwargs: dict[str, Any]) -> Any:
        return self._aio_call(first, kwargs)

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        if self.streams_responses:
            return _Responses(self._loop, self._loop.run(self._open(request, kwargs)))
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
        """The response and the finished call (its code, details and metadata)."""
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.run(self._invoke_with_call(request, kwargs))

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Future[Any]:
        kwargs = _kwargs(timeout, metadata, credentials, wait_for_ready, compression)
        return self._loop.submit(self._invoke(request, kwargs))


def _kwargs(
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


class _BlockingBackends:
    """Blocking channels to the backends, for the first attempt of blocking unary calls.

    Made on first use from the caller's thread; closed (after the channel's
    ``departed_grace``) when the fast path reports the backend gone.
    """

    def __init__(self, router: Router, loop: _Loop) -> None:
        self.router = router
        self._loop = loop
        self._lock = threading.Lock()
        self._channels: dict[str, tuple[grpc.Channel, dict[MethodKey, Any]]] = {}
        config = router.config
        self._options = [*RECONNECT_OPTIONS, *config.channel_options]
        self._grace = config.departed_grace
        router.departure_listeners.append(self.drop)

    def callable(self, info: pb.BackendInfo, key: MethodKey) -> Any:
        entry = self._channels.get(info.id)
        if entry is None:
            with self._lock:
                entry = self._channels.get(info.id)
                if entry is None:
                    entry = self._channels[info.id] = (self._dial(target_of(info)), {})
        channel, callables = entry
        found = callables.get(key)
        if found is None:
            found = callables[key] = channel.unary_unary(key[1], key[2], key[3])
        return found

    def _dial(self, target: str) -> grpc.Channel:
        credentials = self.router.credentials
        if credentials is None:
            return grpc.insecure_channel(target, options=self._options)
        return grpc.secure_channel(target, credentials, options=self._options)

    def drop(self, backend_ids: set[str]) -> None:
        """On the loop thread: close departed backends' channels once their calls had time."""
        with self._lock:
            gone = [self._channels.pop(i) for i in backend_ids if i in self._channels]
        for departed, _ in gone:
            self._loop.loop.call_later(self._grace, departed.close)

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for open_channel, _ in channels:
            open_channel.close()


class _SyncUnaryUnary(_SyncMultiCallable, _UnaryUnaryMultiCallable):  # type: ignore[misc]
    """The hot path: the first attempt runs on a blocking channel in the caller's thread.

    The pick is the fast path's local pick, the outcome goes to the same stats;
    only when that attempt fails does the call move to the event loop, where the
    aio call's retry rules take it from its second attempt on. Before the first
    set, and without the fast path, every call runs on the loop.
    """

    def __init__(
        self, loop: _Loop, target: Any, direct: _BlockingBackends | None, key: MethodKey
    ) -> None:
        super().__init__(loop, target)
        self._direct = direct
        self._key = key

    def __call__(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        direct = self._direct
        if direct is not None:
            options = CallOptions(timeout, metadata, credentials, wait_for_ready, compression)
            info = direct.router.pick_info_now(options.hash_key)
            if info is not None:
                multicallable = direct.callable(info, self._key)
                started = time.perf_counter()
                try:
                    response = multicallable(
                        request,
                        timeout=timeout,
                        metadata=options.metadata,
                        credentials=credentials,
                        compression=compression,
                    )
                except grpc.RpcError as error:
                    direct.router.record(info.id, error.code(), started)
                    return self._loop.call(self._resume, request, options, info.id, error)
                direct.router.record_ok(info.id, started)
                return response
        return super().__call__(
            request, timeout, metadata, credentials, wait_for_ready, compression
        )

    async def _resume(self, request: Any, options: CallOptions, failed_on: str, error: Any) -> Any:
        router = self._direct.router  # type: ignore[union-attr]
        return await UnaryUnaryCall.resume(router, self._key, request, options, failed_on, error)


class _SyncUnaryStream(_SyncMultiCallable, _UnaryStreamMultiCallable):
    streams_responses = True


class _SyncStreamUnary(_SyncMultiCallable, _StreamUnaryMultiCallable):  # type: ignore[misc]
    streams_requests = True


class _SyncStreamStream(_SyncMultiCallable, _StreamStreamMultiCallable):
    streams_requests = streams_responses = True


class SyncChannel(grpc.Channel):
    """A blocking ``grpc.Channel`` over a :class:`Channel` on a background loop."""

    def __init__(self, make: Any) -> None:
        self._loop = _Loop()
        self.aio: Channel = self._loop.run(self._make(make))
        router = self.aio.router
        self._direct = _BlockingBackends(router, self._loop) if router.watcher is not None else None
        self._closed = False
        self._subscribers: dict[Any, Future[Any]] = {}

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
        key: MethodKey = ("unary_unary", method, request_serializer, response_deserializer)
        return _SyncUnaryUnary(
            self._loop,
            self.aio.unary_unary(method, request_serializer, response_deserializer),
            self._direct,
            key,
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
        """Call ``callback(state)`` with the channel's state now and on every change
        (READY while the fast path holds backends), as ``grpc.channel_ready_future`` needs."""
        self._subscribers[callback] = self._loop.submit(self._follow(callback, try_to_connect))

    def unsubscribe(self, callback: Any) -> None:
        watching = self._subscribers.pop(callback, None)
        if watching is not None:
            watching.cancel()

    async def _follow(self, callback: Any, try_to_connect: bool) -> None:
        last = None
        while True:
            state = self.aio.get_state(try_to_connect)
            if state != last:
                last = state
                callback(state)
            await asyncio.sleep(STATE_POLL_INTERVAL)

    def wait_for_backends(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until the fast path holds at least ``count`` backends."""
        self._loop.run(self.aio.wait_for_backends(count, timeout))

    def flush_stats(self) -> None:
        self._loop.run(self.aio.flush_stats())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for watching in self._subscribers.values():
                watching.cancel()
            self._loop.run(self.aio.close())
            if self._direct is not None:
                self._direct.close()
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
