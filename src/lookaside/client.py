"""``LookasideClient``: ask the LB for a backend, call it directly, fail over.

Async first::

    async with LookasideClient("127.0.0.1:50051", service="compute") as client:
        reply = await client.compute("hello")   # reply.result == "olleh"

One channel per backend is kept and reused. Every request has a deadline that
covers all its attempts. When a backend answers ``UNAVAILABLE``,
``DEADLINE_EXCEEDED`` or ``RESOURCE_EXHAUSTED`` the client asks the LB again,
excluding the backends that just failed, and retries (the task is idempotent),
with jittered back-off between attempts, up to ``max_attempts``.
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

from lookaside.model import DEFAULT_SERVICE
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
MAX_CACHED_CHANNELS = 256


@dataclass(frozen=True)
class ComputeResult:
    """The answer to one ``compute`` call, with where and how long it took."""

    result: str
    backend_id: str
    latency_ms: float  # whole request: LB queries, compute calls and retries
    lb_ms: float  # time spent in GetBackend
    compute_ms: float  # time spent in ComputeTask
    attempts: int


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
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.lb_target = lb_target
        self.service = service
        self.client_id = client_id or f"client-{uuid.uuid4().hex[:8]}"
        self.timeout = timeout
        self.lb_timeout = lb_timeout
        self.max_attempts = max_attempts
        self._rng = rng or random.Random()
        self._lb_channel = aio.insecure_channel(lb_target)
        self._lb = pb_grpc.LoadBalancerStub(self._lb_channel)
        self._channels: OrderedDict[str, aio.Channel] = OrderedDict()

    async def __aenter__(self) -> LookasideClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        channels = [self._lb_channel, *self._channels.values()]
        self._channels.clear()
        await asyncio.gather(*(channel.close(None) for channel in channels))

    def _channel(self, target: str) -> aio.Channel:
        channel = self._channels.get(target)
        if channel is None:
            channel = self._channels[target] = aio.insecure_channel(target)
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
        return await self._lb.GetBackend(request, timeout=timeout or self.lb_timeout)

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
        started = time.perf_counter()
        deadline = started + (timeout or self.timeout)
        failed: list[str] = []
        lb_seconds = compute_seconds = 0.0
        last_error: aio.AioRpcError | None = None
        for attempt in range(1, self.max_attempts + 1):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            t0 = time.perf_counter()
            try:
                backend = await self.get_backend(
                    failed, hash_key, timeout=min(self.lb_timeout, remaining)
                )
            except aio.AioRpcError as error:
                lb_seconds += time.perf_counter() - t0
                last_error = error
                if error.code() not in RETRYABLE:
                    raise LookasideError(error.code(), error.details() or "") from error
                await self._pause(attempt, deadline)
                continue
            t1 = time.perf_counter()
            lb_seconds += t1 - t0
            try:
                reply = await self.call_backend(backend, text, deadline - t1)
            except aio.AioRpcError as error:
                compute_seconds += time.perf_counter() - t1
                last_error = error
                if error.code() not in RETRYABLE:
                    raise LookasideError(error.code(), error.details() or "") from error
                failed.append(backend.id)
                await self._pause(attempt, deadline)
                continue
            done = time.perf_counter()
            compute_seconds += done - t1
            return ComputeResult(
                result=reply.result,
                backend_id=reply.backend_id,
                latency_ms=(done - started) * 1000,
                lb_ms=lb_seconds * 1000,
                compute_ms=compute_seconds * 1000,
                attempts=attempt,
            )
        if last_error is None:
            raise LookasideError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed before a try")
        raise LookasideError(
            last_error.code(),
            f"gave up after {len(failed) + 1} attempt(s): {last_error.details()}",
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
