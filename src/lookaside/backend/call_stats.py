"""What a server's calls tell about its load: counted by the interceptor, read by reports.

:class:`CallStats` is written once when a call starts and once when it ends,
from the event loop (``grpc.aio``) or from worker threads (blocking
``grpc.Server``), so it takes a lock; the work under it is a few additions.

:class:`LoadMeter` turns the running totals into the figures a report carries
(gRFC A51's ORCA fields): requests and errors per second and utilisation over
the last :data:`RATE_WINDOW` seconds or so (however often it is asked, so
event-driven reports stay steady), CPU of this process, calls in flight, and
the latency of recent calls as an exponentially weighted moving average.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

#: Rates are measured over about this many seconds.
RATE_WINDOW = 1.0
#: Weight of the newest call in the latency EWMA: about the last 1/alpha calls count.
LATENCY_ALPHA = 0.1

Clock = Callable[[], float]


class CallStats:
    """Running totals of the calls a server handled; thread-safe."""

    def __init__(self, clock: Clock = time.monotonic, alpha: float = LATENCY_ALPHA) -> None:
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self._clock = clock
        self._alpha = alpha
        self._lock = threading.Lock()
        self.in_flight = 0
        self.started = 0
        self.finished = 0
        self.failed = 0
        self.busy_seconds = 0.0  # call-seconds finished, for utilisation over time
        self.latency_ms = 0.0  # EWMA of finished calls; 0 until the first one

    def start(self) -> float:
        """A call began; returns its start time for :meth:`finish`."""
        now = self._clock()
        with self._lock:
            self.in_flight += 1
            self.started += 1
        return now

    def finish(self, started_at: float, ok: bool) -> None:
        seconds = max(0.0, self._clock() - started_at)
        with self._lock:
            self.in_flight -= 1
            self.finished += 1
            if not ok:
                self.failed += 1
            self.busy_seconds += seconds
            ms = seconds * 1000.0
            self.latency_ms = (
                ms
                if self.finished == 1
                else (self.latency_ms + self._alpha * (ms - self.latency_ms))
            )

    def totals(self) -> tuple[int, int, int, float, float]:
        """(in flight, finished, failed, busy seconds, latency EWMA), read together."""
        with self._lock:
            return (
                self.in_flight,
                self.finished,
                self.failed,
                self.busy_seconds,
                self.latency_ms,
            )


@dataclass(frozen=True, slots=True)
class Measurement:
    """One reading of the load figures (ORCA-shaped, gRFC A51)."""

    requests_in_flight: int
    rps: float
    eps: float
    utilization: float  # call-seconds busy / (seconds x capacity), plus calls running now
    cpu_utilization: float  # this process's CPU seconds per second
    latency_ms: float
    load: float  # calls in flight / capacity: 0 idle, 1 at capacity


@dataclass(frozen=True, slots=True)
class _Sample:
    wall: float
    cpu: float
    finished: int
    failed: int
    busy: float


class LoadMeter:
    """Reads :class:`CallStats` into a :class:`Measurement`; thread-safe."""

    def __init__(
        self,
        stats: CallStats,
        capacity: int,
        clock: Clock = time.monotonic,
        cpu_clock: Clock = time.process_time,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.stats = stats
        self.capacity = capacity
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lock = threading.Lock()
        self._samples: deque[_Sample] = deque([self._sample()[0]])

    def _sample(self) -> tuple[_Sample, int, float]:
        in_flight, finished, failed, busy, latency = self.stats.totals()
        sample = _Sample(self._clock(), self._cpu_clock(), finished, failed, busy)
        return sample, in_flight, latency

    def measure(self) -> Measurement:
        with self._lock:
            now, in_flight, latency = self._sample()
            samples = self._samples
            while len(samples) > 1 and now.wall - samples[1].wall >= RATE_WINDOW:
                samples.popleft()
            base = samples[0]
            samples.append(now)
        elapsed = max(now.wall - base.wall, 1e-6)
        finished_busy = (now.busy - base.busy) / (elapsed * self.capacity)
        running = in_flight / self.capacity
        return Measurement(
            requests_in_flight=in_flight,
            rps=(now.finished - base.finished) / elapsed,
            eps=(now.failed - base.failed) / elapsed,
            utilization=min(1.0, max(finished_busy, running)),
            cpu_utilization=max(0.0, (now.cpu - base.cpu) / elapsed),
            latency_ms=latency,
            load=running,
        )
