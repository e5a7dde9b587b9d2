"""The four call types of a lookaside channel, each an ``grpc.aio`` call object.

A call starts at once on the backend the local picker names (the hot path:
one pick, one call on that backend's channel, one stats update). Only when it
fails, or when no local pick is possible, does it go through
:class:`~lookaside.client.attempts.Attempts`, which picks another backend and
applies the transparent-retry and retry-policy rules.

Streams: a call is *committed* once a response message reached the caller;
after that a failure is final (gRFC A6). Request messages of client- and
bidi-streaming calls are kept (up to ``ClientConfig.retry_buffer_bytes``) so a retry can
send them again; a call whose requests outgrew that is committed as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from grpc.aio import EOF  # type: ignore[attr-defined]

from lookaside.client.attempts import Attempts
from lookaside.client.backends import Backend, MethodKey

if TYPE_CHECKING:
    from lookaside.client.router import Router

#: Call metadata naming the request key for hashing policies (``ring_hash``); not sent on.
HASH_KEY_METADATA = "lookaside-hash-key"
_DONE = object()

Metadata = aio.Metadata | Sequence[tuple[str, str | bytes]] | None
DoneCallback = Callable[[Any], None]


class CallOptions:
    """What the caller passed with a call, handed on to every attempt."""

    __slots__ = (
        "compression",
        "credentials",
        "deadline",
        "hash_key",
        "metadata",
        "timeout",
        "wait_for_ready",
    )

    def __init__(
        self,
        timeout: float | None,
        metadata: Metadata,
        credentials: grpc.CallCredentials | None,
        wait_for_ready: bool | None,
        compression: grpc.Compression | None,
    ) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else time.perf_counter() + timeout
        self.hash_key = ""
        if metadata:
            self.hash_key, metadata = _split_hash_key(metadata)
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = bool(wait_for_ready)
        self.compression = compression


def _split_hash_key(metadata: Metadata) -> tuple[str, Metadata]:
    """(the hash key, the metadata without it)."""
    assert metadata is not None
    pairs = list(metadata)
    keys = [value for key, value in pairs if key == HASH_KEY_METADATA]
    if not keys:
        return "", metadata
    rest = tuple((key, value) for key, value in pairs if key != HASH_KEY_METADATA)
    key = keys[-1]
    return (key.decode() if isinstance(key, bytes) else key), rest


class _Call:
    """What every call type shares: the current attempt, cancellation, callbacks.

    The state a call rarely needs starts as class attributes, so that making a
    call on the hot path sets only what it uses.
    """

    _attempt: Any = None
    _attempts: Attempts | None = None
    _task: asyncio.Task[Any] | None = None  # the attempts after the first, when there are
    _cancelled = False
    _finished = False
    _callbacks: tuple[DoneCallback, ...] = ()

    def __init__(self, router: Router, key: MethodKey, options: CallOptions) -> None:
        self._router = router
        self._key = key
        self._options = options

    def _new_attempts(self) -> Attempts:
        attempts = self._attempts = Attempts(
            self._router,
            self._router.policy_for(self._key[1]),
            self._options.deadline,
            self._options.wait_for_ready,
            self._options.hash_key,
        )
        return attempts

    def _start(self, backend: Backend, first: Any, timeout: float | None) -> Any:
        """Start one attempt on ``backend``; ``first`` is the request or request iterator."""
        options = self._options
        self._attempt = backend.callable(self._key)(
            first,
            timeout=timeout,
            metadata=options.metadata,
            credentials=options.credentials,
            compression=options.compression,
        )
        return self._attempt

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            for callback in self._callbacks:
                callback(self)
            self._callbacks = ()

    @property
    def attempts(self) -> int:
        """Attempts this call made so far (1 when the first one answered)."""
        return 1 if self._attempts is None else max(1, self._attempts.count)

    @property
    def lb_seconds(self) -> float:
        """Time this call spent waiting for picks (GetBackend); 0 on the hot path."""
        return 0.0 if self._attempts is None else self._attempts.lb_seconds

    @property
    def from_lb(self) -> bool:
        """False when the LB was unreachable and a remembered or stale pick served it."""
        if self._attempts is not None:
            return self._attempts.from_lb
        watcher = self._router.watcher
        return watcher is None or not watcher.stale

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        return self._finished or self._cancelled

    def time_remaining(self) -> float | None:
        deadline = self._options.deadline
        return None if deadline is None else max(0.0, deadline - time.perf_counter())

    def cancel(self) -> bool:
        if self.done():
            return False
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
        if self._attempt is not None:
            self._attempt.cancel()
        self._finish()
        return True

    def add_done_callback(self, callback: DoneCallback) -> None:
        if self.done():
            callback(self)
        else:
            self._callbacks = (*self._callbacks, callback)

    async def _current(self) -> Any:
        """The attempt to ask for metadata and status (once one has started)."""
        while self._attempt is None:
            if self.done():
                raise self._router.no_backend_error()
            await asyncio.sleep(0.005)
        return self._attempt

    async def initial_metadata(self) -> aio.Metadata:
        return await (await self._current()).initial_metadata()

    async def trailing_metadata(self) -> aio.Metadata:
        await self._settle()
        return await self._attempt.trailing_metadata()

    async def code(self) -> grpc.StatusCode:
        await self._settle()
        return await self._attempt.code()

    async def details(self) -> str:
        await self._settle()
        return await self._attempt.details()

    async def wait_for_connection(self) -> None:
        await (await self._current()).wait_for_connection()

    async def _settle(self) -> None:
        """Wait until the call ended (for status and trailers)."""
        await self._current()


class _UnaryResponse(_Call):
    """What calls with one response share: their attempts after the first, their status."""

    def _first(self) -> Any:
        """The request (or request iterator) for the next attempt."""
        raise NotImplementedError

    def _committed(self) -> bool:
        return False

    async def _attempt_until_done(self, error: aio.AioRpcError | None) -> Any:
        """Attempts until one answers or the rules say stop; ``error``: the last failure."""
        attempts = self._attempts or self._new_attempts()
        try:
            while True:
                if error is not None and not await attempts.again(error, self._committed()):
                    raise error
                backend = await attempts.next_backend()
                attempts.sent(backend)
                started = time.perf_counter()
                call = self._start(backend, self._first(), attempts.attempt_timeout())
                try:
                    response = await call
                except aio.AioRpcError as failed:
                    self._router.record(backend.id, failed.code(), started)
                    error = failed
                    continue
                self._router.record_ok(backend.id, started)
                return response
        finally:
            self._finish()

    async def _settle(self) -> None:
        with contextlib.suppress(aio.AioRpcError, asyncio.CancelledError):
            await self  # type: ignore[misc]
        if self._attempt is None:
            raise self._router.no_backend_error()


class UnaryUnaryCall(_UnaryResponse, aio.UnaryUnaryCall[Any, Any]):
    """One request, one response; retried on another backend when the rules allow."""

    def __init__(self, router: Router, key: MethodKey, request: Any, options: CallOptions) -> None:
        # The hot path, spelled out: pick, start the attempt, nothing else.
        self._router = router
        self._key = key
        self._options = options
        self._request = request
        backend = self._backend = router.pick_now(options.hash_key)
        self._started = time.perf_counter()
        if backend is not None:
            self._attempt = backend.callable(key)(
                request,
                timeout=options.timeout,
                metadata=options.metadata,
                credentials=options.credentials,
                compression=options.compression,
            )
        else:
            self._task = asyncio.get_running_loop().create_task(self._run(None))

    def __await__(self) -> Generator[Any, None, Any]:
        if self._task is None:
            try:
                response = yield from self._attempt.__await__()
            except aio.AioRpcError as error:
                if self._task is None:
                    self._router.record(self._backend.id, error.code(), self._started)  # type: ignore[union-attr]
                    self._task = asyncio.get_running_loop().create_task(self._run(error))
            else:
                if not self._finished:
                    self._router.record_ok(self._backend.id, self._started)  # type: ignore[union-attr]
                    self._finished = True
                    if self._callbacks:
                        self._finished = False
                        self._finish()
                return response
        return (yield from self._task.__await__())

    @classmethod
    def resume(
        cls,
        router: Router,
        key: MethodKey,
        request: Any,
        options: CallOptions,
        failed_on: str,
        error: aio.AioRpcError,
    ) -> UnaryUnaryCall:
        """The call from its second attempt on: its first failed on ``failed_on`` elsewhere
        (a blocking channel's own first attempt); the retry rules decide what follows."""
        call = cls.__new__(cls)
        _Call.__init__(call, router, key, options)
        call._request = request
        call._backend = None
        call._started = time.perf_counter()
        attempts = call._new_attempts()
        attempts.tried.append(failed_on)
        call._task = asyncio.get_running_loop().create_task(call._attempt_until_done(error))
        return call

    def _first(self) -> Any:
        return self._request

    async def _run(self, error: aio.AioRpcError | None) -> Any:
        """Attempts after the first (or all of them, when no local pick was possible)."""
        attempts = self._new_attempts()
        if self._backend is not None:
            attempts.sent(self._backend)
        return await self._attempt_until_done(error)


class _ResponseStream(_Call):
    """Responses of a server- or bidi-streaming call, across attempts until committed."""

    def __init__(self, router: Router, key: MethodKey, options: CallOptions) -> None:
        super().__init__(router, key, options)
        self._responses: AsyncIterator[Any] | None = None
        self._pending: tuple[Any, Backend, float] | None = None

    def _first(self) -> Any:
        raise NotImplementedError

    def _start_now(self) -> None:
        """Start the first attempt at once when a local pick is possible (as gRPC does)."""
        backend = self._router.pick_now(self._options.hash_key)
        if backend is not None:
            attempts = self._new_attempts()
            attempts.sent(backend)
            started = time.perf_counter()
            self._pending = (
                self._start(backend, self._first(), self._options.timeout),
                backend,
                started,
            )
        else:
            self._router.start()

    async def _begin(self, attempts: Attempts) -> tuple[Any, Backend, float]:
        pending, self._pending = self._pending, None
        if pending is not None:
            return pending
        backend = await attempts.next_backend()
        attempts.sent(backend)
        started = time.perf_counter()
        return self._start(backend, self._first(), attempts.attempt_timeout()), backend, started

    async def _current(self) -> Any:
        if self._attempt is None and self._responses is None:
            attempts = self._attempts or self._new_attempts()
            self._pending = await self._begin(attempts)
        return await super()._current()

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._responses is None:
            self._responses = self._stream()
        return self._responses

    async def read(self) -> Any:
        try:
            return await self.__aiter__().__anext__()
        except StopAsyncIteration:
            return EOF

    def _committed(self) -> bool:
        """Committed before any response (request messages outgrew the retry buffer)."""
        return False

    async def _stream(self) -> AsyncIterator[Any]:
        attempts = self._attempts or self._new_attempts()
        error: aio.AioRpcError | None = None
        try:
            while True:
                if error is not None and not await attempts.again(error, self._committed()):
                    raise error
                call, backend, started = await self._begin(attempts)
                delivered = False
                try:
                    async for message in call:
                        delivered = True
                        yield message
                except aio.AioRpcError as failed:
                    self._router.record(backend.id, failed.code(), started)
                    if delivered:
                        raise
                    error = failed
                    continue
                self._router.record_ok(backend.id, started)
                return
        finally:
            self._finish()

    async def _settle(self) -> None:
        await (await self._current()).code()


class UnaryStreamCall(_ResponseStream, aio.UnaryStreamCall[Any, Any]):
    def __init__(self, router: Router, key: MethodKey, request: Any, options: CallOptions) -> None:
        super().__init__(router, key, options)
        self._request = request
        self._start_now()

    def _first(self) -> Any:
        return self._request


class RequestLog:
    """The request messages of a streaming call, kept so that a retry can send them again.

    Every attempt reads through :meth:`replay`: first what was kept, then new
    messages from the caller (one reader pulls at a time, so a message pulled
    for an attempt that just failed is kept for the next one). Once the kept
    messages pass ``limit`` bytes the call is committed: nothing more is kept.
    """

    def __init__(self, source: AsyncIterator[Any], limit: int) -> None:
        self._source = source
        self._limit = limit
        self._kept: list[Any] = []
        self._pending: list[Any] = []
        self._size = 0
        self._ended = False
        self._lock = asyncio.Lock()
        self.overflowed = False

    async def replay(self) -> AsyncIterator[Any]:
        index = 0
        while True:
            if not self.overflowed and index < len(self._kept):
                index += 1
                yield self._kept[index - 1]
                continue
            if self._pending:
                yield self._pending.pop(0)
                continue
            if self._ended:
                return
            async with self._lock:
                if self._pending or (not self.overflowed and index < len(self._kept)):
                    continue
                try:
                    message = await self._source.__anext__()
                except StopAsyncIteration:
                    self._ended = True
                    return
                if not self.overflowed:
                    self._keep(message)
                    continue
            yield message

    def _keep(self, message: Any) -> None:
        size = getattr(message, "ByteSize", None)
        self._size += size() if callable(size) else 1
        if self._size > self._limit:
            self.overflowed = True
            self._pending.append(message)
            self._kept.clear()
        else:
            self._kept.append(message)


async def _from_sync(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class _Writer:
    """``write()`` / ``done_writing()`` as an async iterator of requests."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()

    async def write(self, request: Any) -> None:
        await self._queue.put(request)

    async def done_writing(self) -> None:
        await self._queue.put(_DONE)

    def __aiter__(self) -> _Writer:
        return self

    async def __anext__(self) -> Any:
        item = await self._queue.get()
        if item is _DONE:
            raise StopAsyncIteration
        return item


class _RequestStreamMixin:
    """Request side of client- and bidi-streaming calls."""

    _log: RequestLog
    _writer: _Writer | None
    _router: Router

    def _init_requests(self, request_iterator: Any) -> None:
        self._writer = None
        if request_iterator is None:
            self._writer = _Writer()
            source: AsyncIterator[Any] = self._writer
        elif hasattr(request_iterator, "__aiter__"):
            source = request_iterator.__aiter__()
        else:
            source = _from_sync(request_iterator)
        self._log = RequestLog(source, self._router.config.retry_buffer_bytes)

    async def write(self, request: Any) -> None:
        if self._writer is None:
            raise grpc.aio.UsageError("write() needs a call made without a request iterator")
        await self._writer.write(request)

    async def done_writing(self) -> None:
        if self._writer is None:
            raise grpc.aio.UsageError("done_writing() needs a call made without a request iterator")
        await self._writer.done_writing()


class StreamUnaryCall(_RequestStreamMixin, _UnaryResponse, aio.StreamUnaryCall[Any, Any]):
    def __init__(
        self, router: Router, key: MethodKey, request_iterator: Any, options: CallOptions
    ) -> None:
        _Call.__init__(self, router, key, options)
        self._init_requests(request_iterator)
        self._all = self._task = asyncio.get_running_loop().create_task(
            self._attempt_until_done(None)
        )

    def __await__(self) -> Generator[Any, None, Any]:
        return (yield from self._all.__await__())

    def _first(self) -> Any:
        return self._log.replay()

    def _committed(self) -> bool:
        return self._log.overflowed


class StreamStreamCall(_RequestStreamMixin, _ResponseStream, aio.StreamStreamCall[Any, Any]):
    def __init__(
        self, router: Router, key: MethodKey, request_iterator: Any, options: CallOptions
    ) -> None:
        _ResponseStream.__init__(self, router, key, options)
        self._init_requests(request_iterator)
        self._start_now()

    def _first(self) -> Any:
        return self._log.replay()

    def _committed(self) -> bool:
        return self._log.overflowed
