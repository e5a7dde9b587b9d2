"""The backend's ``lookaside.v1.Compute`` servicer: the seed's dummy task.

``ComputeTask`` reverses the input after some simulated work. At most
``workers`` tasks run at once; the rest wait in a queue whose length is what
the backend reports as load (``(running + queued) / workers``). A task that
would have to wait while ``max_queue`` tasks already wait is answered with
``RESOURCE_EXHAUSTED`` at once, so a client retries elsewhere instead of
waiting behind an overloaded backend (``max_queue=0``: never queue, serve only
while a worker is free). Each rejection calls ``on_reject`` (the backend uses
it to tell the LB at once that it is saturated, see :mod:`lookaside.backend.load_source`).

``input`` is the only field; it is limited to :data:`MAX_INPUT_CHARS`
characters (``INVALID_ARGUMENT`` naming the field beyond). Any valid UTF-8
string is accepted; malformed bytes never reach here (see
:class:`lookaside.serving.DecodeErrorInterceptor`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from typing import Any

import grpc
from grpc import aio

from lookaside.backend.latency import LatencyByRif
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

MAX_INPUT_CHARS = 1_000_000


class WorkMode(Enum):
    SLEEP = "sleep"  # wait without using CPU, like a call to a slow dependency
    CPU = "cpu"  # spin on the CPU, so CPU utilisation figures mean something


@dataclass
class TaskCounters:
    """Running totals the load reporter turns into rates and utilisation."""

    running: int = 0
    queued: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    busy_seconds: float = 0.0  # worker-seconds spent on tasks, for utilisation over time


def _spin(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


class ComputeService(pb_grpc.ComputeServicer):
    def __init__(
        self,
        backend_id: str,
        workers: int,
        work_ms: float,
        work_mode: WorkMode = WorkMode.SLEEP,
        max_queue: int = 1000,
        on_reject: Callable[[], None] | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if max_queue < 0:
            raise ValueError("max_queue must be >= 0")
        self.backend_id = backend_id
        self.workers = workers
        self.work_seconds = work_ms / 1000.0
        self.work_mode = work_mode
        self.max_queue = max_queue
        self.counters = TaskCounters()
        #: Latency of finished calls by RIF at their arrival (reported as ``latency_ms``).
        self.latency = LatencyByRif()
        self.on_reject = on_reject
        #: Called whenever the number of tasks running or queued changes.
        self.on_change = on_change
        self._slots = asyncio.Semaphore(workers)
        self._executor = (
            ThreadPoolExecutor(workers, thread_name_prefix="work")
            if work_mode is WorkMode.CPU
            else None
        )

    def load(self) -> float:
        """(tasks running + queued) / workers: 0 idle, 1 all busy, above 1 queueing."""
        return (self.counters.running + self.counters.queued) / self.workers

    def saturation_load(self) -> float:
        """The load with every worker busy and the queue full: where rejections start."""
        return (self.workers + self.max_queue) / self.workers

    def in_flight(self) -> int:
        """Calls running or queued: Prequal's requests in flight (RIF)."""
        return self.counters.running + self.counters.queued

    def utilization(self) -> float:
        return self.counters.running / self.workers

    async def _work(self) -> None:
        if self.work_seconds <= 0:
            return
        if self._executor is None:
            await asyncio.sleep(self.work_seconds)
        else:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, _spin, self.work_seconds
            )

    async def ComputeTask(
        self, request: pb.TaskRequest, context: aio.ServicerContext[Any, Any]
    ) -> pb.TaskResponse:
        if len(request.input) > MAX_INPUT_CHARS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"input: {len(request.input)} characters, the limit is {MAX_INPUT_CHARS}",
            )
        counters = self.counters
        if counters.running + counters.queued >= self.workers + self.max_queue:
            counters.rejected += 1
            if self.on_reject is not None:
                self.on_reject()
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"backend {self.backend_id} is overloaded: {counters.queued} tasks queued "
                f"(max {self.max_queue})",
            )
        arrived = time.perf_counter()
        rif_at_arrival = counters.running + counters.queued
        counters.queued += 1
        self._changed()
        try:
            await self._slots.acquire()
        finally:
            counters.queued -= 1
        counters.running += 1
        started = time.perf_counter()
        try:
            await self._work()
            result = request.input[::-1]
        except BaseException:
            counters.failed += 1
            raise
        finally:
            counters.running -= 1
            counters.busy_seconds += time.perf_counter() - started
            self._slots.release()
            self._changed()
        counters.completed += 1
        self.latency.record(rif_at_arrival, time.perf_counter() - arrived)
        return pb.TaskResponse(result=result, backend_id=self.backend_id)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
