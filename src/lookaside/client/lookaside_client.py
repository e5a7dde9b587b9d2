"""``LookasideClient``: the demo ``Compute`` service over :func:`lookaside.channel`.

Async first::

    async with LookasideClient("127.0.0.1:50051", service="compute") as client:
        reply = await client.compute("hello")   # reply.result == "olleh"

A thin layer: the calls go through a :class:`~lookaside.client.channel.Channel`
(one channel per backend, picks, retries, fallback, client stats), with a gRFC
A6 retry policy for ``ComputeTask`` (the task is idempotent): ``UNAVAILABLE``,
``DEADLINE_EXCEEDED`` and ``RESOURCE_EXHAUSTED`` are retried on another
backend, with jittered back-off, up to ``max_attempts``, all within one
deadline. ``attempt_timeout`` bounds each attempt but the last, to fail over
from a backend that hangs.

Its defaults (:data:`~lookaside.client.config.LOOKASIDE_CLIENT_DEFAULTS`) ask
the LB for every request (``GetBackend``), as it always did; pass
``ClientConfig(fast_path=True)`` for local picks. When the LB is unreachable
the client carries on with the backends it remembers and
``ComputeResult.from_lb`` says so.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import cast

import grpc
from grpc import aio

from lookaside.client.calls import HASH_KEY_METADATA, UnaryUnaryCall
from lookaside.client.channel import Channel
from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS, ClientConfig
from lookaside.client.stats import CallStats
from lookaside.model import DEFAULT_SERVICE
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

COMPUTE_SERVICE = "lookaside.v1.Compute"
#: What ComputeTask retries: the task is idempotent, so overload and timeouts too.
RETRYABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")
INITIAL_BACKOFF = 0.04  # seconds; doubled per retry up to MAX_BACKOFF
MAX_BACKOFF = 0.5


def compute_service_config(max_attempts: int, attempt_timeout: float | None) -> str | None:
    """The gRFC A6 service config for ``ComputeTask`` (None: no retries)."""
    if max_attempts < 2:
        return None
    policy: dict[str, object] = {
        "maxAttempts": max_attempts,
        "initialBackoff": f"{INITIAL_BACKOFF}s",
        "maxBackoff": f"{MAX_BACKOFF}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": list(RETRYABLE),
    }
    if attempt_timeout is not None:
        policy["perAttemptRecvTimeout"] = f"{attempt_timeout}s"
    return json.dumps(
        {"methodConfig": [{"name": [{"service": COMPUTE_SERVICE}], "retryPolicy": policy}]}
    )


@dataclass(frozen=True)
class ComputeResult:
    """The answer to one ``compute`` call, with where and how long it took."""

    result: str
    backend_id: str
    latency_ms: float  # whole request: picks, compute calls and retries
    lb_ms: float  # time spent picking (GetBackend; ~0 on the fast path)
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
        config: ClientConfig = LOOKASIDE_CLIENT_DEFAULTS,
        *,
        rng: random.Random | None = None,
    ) -> None:
        if config.service_config is None:
            retry = compute_service_config(config.max_attempts, config.attempt_timeout)
            config = replace(config, service_config=retry)
        self.config = config
        self.lb_target = lb_target
        self.service = service
        self.timeout = config.timeout
        self.channel = Channel(lb_target, service, config, rng=rng)
        self.client_id = self.channel.client_id
        self._router = self.channel.router
        self._stub = pb_grpc.ComputeStub(self.channel)

    @property
    def call_stats(self) -> CallStats:
        return self._router.stats

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
        await self.channel.flush_stats()

    def fast_path_size(self) -> int:
        """How many backends the fast path knows now (0 without it or before its first set)."""
        return len(self.channel.backends())

    async def wait_fast_path(self, timeout: float = 5.0) -> None:
        """Wait until the fast path has its first set of backends (for tools and tests)."""
        watcher = self._router.watcher
        if watcher is None:
            raise RuntimeError("this client was made without fast_path=True")
        self._router.start()
        await asyncio.wait_for(watcher.ready.wait(), timeout)

    async def close(self) -> None:
        await self.channel.close()

    async def get_backend(
        self, exclude: Sequence[str] = (), hash_key: str = "", timeout: float | None = None
    ) -> pb.BackendInfo:
        """Ask the LB for a backend (the seed's ``GetBackend``)."""
        return await self._router.lb_picker.get_backend(exclude, hash_key, timeout)

    def remembered(self) -> list[str]:
        """Ids of the backends this client would fall back on, oldest first."""
        return self._router.lb_picker.remembered()

    async def call_backend(
        self, backend: pb.BackendInfo, text: str, timeout: float
    ) -> pb.TaskResponse:
        """Send the compute task straight to one backend (no pick, no retry)."""
        stub = pb_grpc.ComputeStub(self._router.pool.get(backend).channel)
        return await stub.ComputeTask(pb.TaskRequest(input=text), timeout=timeout)

    async def compute(
        self, text: str, *, timeout: float | None = None, hash_key: str = ""
    ) -> ComputeResult:
        """Reverse ``text`` on the backend the LB picks; fail over on errors."""
        started = time.perf_counter()
        metadata = ((HASH_KEY_METADATA, hash_key),) if hash_key else None
        call = cast(
            UnaryUnaryCall,
            self._stub.ComputeTask(
                pb.TaskRequest(input=text), timeout=timeout or self.timeout, metadata=metadata
            ),
        )
        try:
            reply = await call
        except aio.AioRpcError as error:
            details = error.details() or ""
            if call.attempts > 1:
                details = f"gave up after {call.attempts} attempt(s): {details}"
            raise LookasideError(error.code(), details) from error
        latency = (time.perf_counter() - started) * 1000
        lb_ms = call.lb_seconds * 1000
        return ComputeResult(
            result=reply.result,
            backend_id=reply.backend_id,
            latency_ms=latency,
            lb_ms=lb_ms,
            compute_ms=max(0.0, latency - lb_ms),
            attempts=call.attempts,
            from_lb=call.from_lb,
        )


class BlockingLookasideClient:
    """A small blocking wrapper: runs :class:`LookasideClient` on a private event loop."""

    def __init__(
        self,
        lb_target: str,
        service: str = DEFAULT_SERVICE,
        config: ClientConfig = LOOKASIDE_CLIENT_DEFAULTS,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = self._loop.run_until_complete(self._make(lb_target, service, config))

    @staticmethod
    async def _make(lb_target: str, service: str, config: ClientConfig) -> LookasideClient:
        return LookasideClient(lb_target, service, config)

    def compute(self, text: str, *, timeout: float | None = None) -> ComputeResult:
        return self._loop.run_until_complete(self._client.compute(text, timeout=timeout))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()

    def __enter__(self) -> BlockingLookasideClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
