"""``LookasideClient``: ask the LB for a backend, call it directly, fail over.

Async first::

    async with LookasideClient("127.0.0.1:50051", service="compute") as client:
        reply = await client.compute("hello")   # reply.result == "olleh"

One channel per backend is kept and reused. Every request has a deadline that
covers all its attempts. When a backend answers ``UNAVAILABLE``,
``DEADLINE_EXCEEDED`` or ``RESOURCE_EXHAUSTED`` the client asks the LB again,
excluding the backends that just failed, and retries (the task is idempotent),
with jittered back-off between attempts, up to ``max_attempts``.

When the LB itself cannot be reached (``UNAVAILABLE`` or ``DEADLINE_EXCEEDED``
from ``GetBackend``), the client carries on with the backends it remembers:
the last :data:`MAX_REMEMBERED` it was handed for the service, round-robin,
minus those that answered ``UNAVAILABLE`` since. For :data:`LB_RETRY_INTERVAL`
after finding the LB unreachable it does not wait on it at all; then it asks
again, and uses it as before once it answers. ``ComputeResult.from_lb`` says
which way a request went.

Fast path: ``fast_path=True`` subscribes to the LB's ``WatchBackends`` stream
and picks locally with the same policy code (see :mod:`lookaside.client.fast_path`),
so a request costs one RPC (to the backend) instead of two. Until the first
update arrives, and whenever the local set has nobody left to offer, the
client asks the LB as usual.

Outcomes: the client counts calls finished and failed per backend and sends
them to the LB every few seconds (``ReportClientStats``), which ejects
backends that clients see failing; ``report_stats=False`` turns that off.

Security: ``tls`` (a :class:`~lookaside.security.TlsConfig` with ``ca``, and
``cert``/``key`` for mutual TLS) makes every channel, to the LB and to the
backends, TLS with the same trust; ``token`` is the LB's client token, sent on
``GetBackend``.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import grpc
from grpc import aio

from lookaside.channels import dial
from lookaside.client.fast_path import BackendWatcher
from lookaside.client.stats import CallStats, ClientStatsReporter
from lookaside.model import DEFAULT_SERVICE, PickRequest
from lookaside.security import TlsConfig, Token, bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
#: Statuses that count against the backend in the stats sent to the LB.
BACKEND_FAULTS = RETRYABLE | {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DATA_LOSS,
}
LB_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_CACHED_CHANNELS = 256
MAX_REMEMBERED = 64  # backends remembered per client for when the LB is unreachable
LB_RETRY_INTERVAL = 0.5  # seconds to go without the LB after finding it unreachable


@dataclass(frozen=True)
class ComputeResult:
    """The answer to one ``compute`` call, with where and how long it took."""

    result: str
    backend_id: str
    latency_ms: float  # whole request: LB queries, compute calls and retries
    lb_ms: float  # time spent in GetBackend
    compute_ms: float  # time spent in ComputeTask
    attempts: int
    from_lb: bool = True  # False: the LB was unreachable, a remembered backend served it


class LookasideError(Exception):
    """A request failed after every attempt; ``code`` is the last gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code


class LookasideClient:
    def __init__(
        self,
        lb_target: str,
        service: str = DEFAULT_SERVICE,
        *,
        client_id: str | None = None,
        timeout: float = 10.0,
        lb_timeout: float = 2.0,
        max_attempts: int = 3,
        rng: random.Random | None = None,
        token: Token | None = None,
        tls: TlsConfig | None = None,
        report_stats: bool = True,
        attempt_timeout: float | None = None,
        fast_path: bool = False,
        fast_path_policy: str | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if attempt_timeout is not None and attempt_timeout <= 0:
            raise ValueError("attempt_timeout must be positive")
        #: Longest wait for one backend call; None = all that is left of the deadline.
        #: Set it to fail over from a backend that hangs instead of waiting it out.
        self.attempt_timeout = attempt_timeout
        self.lb_target = lb_target
        self.service = service
        self.client_id = client_id or f"client-{uuid.uuid4().hex[:8]}"
        self.timeout = timeout
        self.lb_timeout = lb_timeout
        self.max_attempts = max_attempts
        self._rng = rng or random.Random()
        self._credentials = tls.channel_credentials() if tls is not None else None
        self._lb_metadata = bearer_metadata(token)
        self._lb_channel = dial(lb_target, self._credentials)
        self._lb = pb_grpc.LoadBalancerStub(self._lb_channel)
        self._channels: OrderedDict[str, aio.Channel] = OrderedDict()
        self._remembered: OrderedDict[str, pb.BackendInfo] = OrderedDict()
        self._next_remembered = 0
        self._skip_lb_until = 0.0
        self._watcher = (
            BackendWatcher(
                self._lb_channel,
                self.client_id,
                service,
                policy=fast_path_policy,
                metadata=self._lb_metadata,
                rng=self._rng,
            )
            if fast_path
            else None
        )
        self.call_stats = CallStats()
        self._stats_reporter = (
            ClientStatsReporter(
                self._lb_channel,
                self.call_stats,
                self.client_id,
                self.service,
                metadata=self._lb_metadata,
            )
            if report_stats
            else None
        )

    async def __aenter__(self) -> LookasideClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def flush_stats(self) -> None:
        """Send the call outcomes counted so far to the LB now, not at the next interval."""
        if self._stats_reporter is not None:
            await self._stats_reporter.flush()

    def fast_path_size(self) -> int:
        """How many backends the fast path knows now (0 without it or before its first set)."""
        return self._watcher.size if self._watcher is not None else 0

    async def wait_fast_path(self, timeout: float = 5.0) -> None:
        """Wait until the fast path has its first set of backends (for tools and tests)."""
        if self._watcher is None:
            raise RuntimeError("this client was made without fast_path=True")
        self._watcher.start()
        await asyncio.wait_for(self._watcher.ready.wait(), timeout)

    async def close(self) -> None:
        if self._watcher is not None:
            await self._watcher.stop()
        if self._stats_reporter is not None:
            await self._stats_reporter.stop()  # sends what is left
        channels = [self._lb_channel, *self._channels.values()]
        self._channels.clear()
        await asyncio.gather(*(channel.close(None) for channel in channels))

    def _channel(self, target: str) -> aio.Channel:
        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = dial(target, self._credentials)
            if len(self._channels) > MAX_CACHED_CHANNELS:
                _, oldest = self._channels.popitem(last=False)
                asyncio.get_running_loop().create_task(oldest.close(None))
        else:
            self._channels.move_to_end(target)
        return channel

    async def get_backend(
        self, exclude: Sequence[str] = (), hash_key: str = "", timeout: float | None = None
    ) -> pb.BackendInfo:
        """Ask the LB for a backend (the seed's ``GetBackend``)."""
        request = pb.ServerRequest(
            client_id=self.client_id,
            service_name=self.service,
            hash_key=hash_key,
            exclude_ids=list(exclude),
        )
        return await self._lb.GetBackend(
            request, timeout=timeout or self.lb_timeout, metadata=self._lb_metadata
        )

    def remembered(self) -> list[str]:
        """Ids of the backends this client would fall back on, oldest first."""
        return list(self._remembered)

    def _remember(self, backend: pb.BackendInfo) -> None:
        self._remembered[backend.id] = backend
        self._remembered.move_to_end(backend.id)
        if len(self._remembered) > MAX_REMEMBERED:
            self._remembered.popitem(last=False)

    def _forget(self, backend_id: str) -> None:
        self._remembered.pop(backend_id, None)

    def _pick_remembered(self, exclude: Sequence[str]) -> pb.BackendInfo | None:
        """Round-robin over the remembered backends not in ``exclude``."""
        candidates = [b for b in self._remembered.values() if b.id not in exclude]
        if not candidates:
            return None
        self._next_remembered += 1
        return candidates[self._next_remembered % len(candidates)]

    def _lb_unreachable(self, error: aio.AioRpcError) -> bool:
        """True when the LB did not answer (as opposed to answering "no backend")."""
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return True
        state = self._lb_channel.get_state(try_to_connect=False)
        return state != grpc.ChannelConnectivity.READY

    async def _choose(
        self, exclude: Sequence[str], hash_key: str, remaining: float
    ) -> tuple[pb.BackendInfo | None, bool, aio.AioRpcError | None]:
        """(backend, from the LB?, the LB's error): the LB's pick, else a remembered one.

        Raises :class:`LookasideError` when the LB answers with a status that
        no retry can fix (``UNAUTHENTICATED``, ``INVALID_ARGUMENT``, ...).
        """
        if self._watcher is not None:
            self._watcher.start()
            local = self._watcher.pick(PickRequest(self.client_id, hash_key, frozenset(exclude)))
            if local is not None:
                return local, True, None
        if time.monotonic() < self._skip_lb_until:
            backend = self._pick_remembered(exclude)
            if backend is not None:
                return backend, False, None
        try:
            backend = await self.get_backend(
                exclude, hash_key, timeout=min(self.lb_timeout, remaining)
            )
        except aio.AioRpcError as error:
            if error.code() not in LB_UNREACHABLE:
                raise LookasideError(error.code(), error.details() or "") from error
            if self._lb_unreachable(error):
                self._skip_lb_until = time.monotonic() + LB_RETRY_INTERVAL
            return self._pick_remembered(exclude), False, error
        self._remember(backend)
        return backend, True, None

    async def call_backend(
        self, backend: pb.BackendInfo, text: str, timeout: float
    ) -> pb.TaskResponse:
        """Send the compute task straight to one backend."""
        host = f"[{backend.address}]" if ":" in backend.address else backend.address
        stub = pb_grpc.ComputeStub(self._channel(f"{host}:{backend.port}"))
        return await stub.ComputeTask(pb.TaskRequest(input=text), timeout=timeout)

    async def compute(
        self, text: str, *, timeout: float | None = None, hash_key: str = ""
    ) -> ComputeResult:
        """Reverse ``text`` on the backend the LB picks; fail over on errors."""
        if self._stats_reporter is not None:
            self._stats_reporter.start()
        started = time.perf_counter()
        deadline = started + (timeout or self.timeout)
        failed: list[str] = []
        lb_seconds = compute_seconds = 0.0
        last_error: aio.AioRpcError | None = None
        tried = 0
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            tried = attempt
            t0 = time.perf_counter()
            backend, from_lb, lb_error = await self._choose(failed, hash_key, remaining)
            t1 = time.perf_counter()
            lb_seconds += t1 - t0
            if backend is None:
                last_error = lb_error or last_error
                await self._pause(attempt, deadline)
                continue
            try:
                budget = deadline - t1
                if self.attempt_timeout is not None and attempt < self.max_attempts:
                    budget = min(budget, self.attempt_timeout)
                reply = await self.call_backend(backend, text, budget)
            except aio.AioRpcError as error:
                compute_seconds += time.perf_counter() - t1
                last_error = error
                self.call_stats.record(backend.id, ok=error.code() not in BACKEND_FAULTS)
                if error.code() not in RETRYABLE:
                    raise LookasideError(error.code(), error.details() or "") from error
                failed.append(backend.id)
                if error.code() == grpc.StatusCode.UNAVAILABLE:
                    self._forget(backend.id)
                await self._pause(attempt, deadline)
                continue
            done = time.perf_counter()
            compute_seconds += done - t1
            self.call_stats.record(backend.id, ok=True)
            return ComputeResult(
                result=reply.result,
                backend_id=reply.backend_id,
                latency_ms=(done - started) * 1000,
                lb_ms=lb_seconds * 1000,
                compute_ms=compute_seconds * 1000,
                attempts=attempt,
                from_lb=from_lb,
            )
        if last_error is None:
            raise LookasideError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before a try")
        raise LookasideError(
            last_error.code(),
            f"gave up after {tried} attempt(s): {last_error.details()}",
        ) from last_error

    async def _pause(self, attempt: int, deadline: float) -> None:
        """Jittered back-off between attempts, never past the deadline."""
        if attempt >= self.max_attempts:
            return
        ceiling = min(0.5, 0.02 * 2**attempt)
        delay = min(self._rng.uniform(0, ceiling), max(0.0, deadline - time.perf_counter()))
        await asyncio.sleep(delay)


class BlockingLookasideClient:
    """A small blocking wrapper: runs :class:`LookasideClient` on a private event loop."""

    def __init__(self, lb_target: str, service: str = DEFAULT_SERVICE, **options: object) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(lb_target, service, options))

    @staticmethod
    async def _make(lb_target: str, service: str, options: dict[str, object]) -> LookasideClient:
        return LookasideClient(lb_target, service, **options)  # type: ignore[arg-type]

    def compute(self, text: str, *, timeout: float | None = None) -> ComputeResult:
        return self._loop.run_until_complete(self._client.compute(text, timeout=timeout))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()

    def __enter__(self) -> BlockingLookasideClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
