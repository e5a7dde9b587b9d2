"""Per-backend call outcomes a client sends to the LB (in the spirit of grpclb's ClientStats).

The client counts calls finished and failed per backend, and their latency as
the client saw it (sum and maximum), as they happen (a few additions, no I/O),
and a background task sends everything counted
since the last report in one ``ReportClientStats`` message every few seconds.
The LB feeds the counts to its outlier detector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence

from grpc import aio

from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.client")

RPC_TIMEOUT = 2.0
FINAL_FLUSH_TIMEOUT = 0.5  # closing a client must not hang on an unreachable LB


class CallStats:
    """Counts since the last drain: backend id -> [finished, failed, latency sum, max].

    Thread-safe (a blocking channel records from its callers' threads while the
    event loop drains), with one uncontended lock per record.
    """

    __slots__ = ("_counts", "_lock", "_since")

    def __init__(self) -> None:
        self._counts: dict[str, list[float]] = {}
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def record(self, backend_id: str, ok: bool, latency_ms: float = 0.0) -> None:
        with self._lock:
            counts = self._counts.get(backend_id)
            if counts is None:
                counts = self._counts[backend_id] = [0, 0, 0.0, 0.0]
            counts[0] += 1
            if not ok:
                counts[1] += 1
            counts[2] += latency_ms
            if latency_ms > counts[3]:
                counts[3] = latency_ms

    def drain(self, client_id: str, service: str) -> pb.ClientStats | None:
        """The counts as one message (None when nothing happened), then start afresh."""
        now = time.monotonic()
        with self._lock:
            counts, self._counts = self._counts, {}
        interval, self._since = now - self._since, now
        if not counts:
            return None
        return pb.ClientStats(
            client_id=client_id,
            service_name=service,
            interval_seconds=interval,
            per_backend=[
                pb.BackendCallStats(
                    backend_id=b,
                    calls_finished=int(f),
                    calls_failed=int(x),
                    latency_ms_sum=total,
                    latency_ms_max=slowest,
                )
                for b, (f, x, total, slowest) in counts.items()
            ],
        )


class ClientStatsReporter:
    """Sends a client's :class:`CallStats` to the LB every ``interval`` seconds."""

    def __init__(
        self,
        channel: aio.Channel,
        stats: CallStats,
        client_id: str,
        service: str,
        interval: float,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        self._stub = pb_grpc.LoadBalancerStub(channel)
        self._stats = stats
        self._client_id = client_id
        self._service = service
        self._interval = interval
        self._metadata = tuple(metadata)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self, timeout: float = RPC_TIMEOUT) -> None:
        """Send what was counted so far; a failure drops those counts (they are advisory)."""
        message = self._stats.drain(self._client_id, self._service)
        if message is None:
            return
        try:
            reply = await self._stub.ReportClientStats(
                message, timeout=timeout, metadata=self._metadata
            )
        except aio.AioRpcError as error:
            log.debug("client stats not sent code=%s", error.code().name)
            return
        if reply.report_interval_seconds > 0:
            self._interval = reply.report_interval_seconds

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush(timeout=FINAL_FLUSH_TIMEOUT)
