"""What the demo Compute backend says about its load in each report.

The agent measures every call (rates, errors, latency, calls in flight, see
:mod:`lookaside.backend.call_stats`); :meth:`LoadSource.adjust` is its report
hook and puts the demo's own figures over those: the load, utilisation and
queue described here.

``real``: measured from the compute service at report time, plus the
ORCA-shaped figures (utilisation, requests and errors per second over the last
second or so, CPU of this process). ``simulated``: the seed's approach, a random
walk in [0, 1], for experiments that want load independent of traffic.

Overload: a backend that rejected a task (``RESOURCE_EXHAUSTED``, queue full)
within the last :data:`RATE_WINDOW` reports at least its *saturation load*, ``(workers +
max_queue) / workers`` — the load at which it starts rejecting — whatever the
mode and even if the burst has passed by report time. Load-aware policies
(``least_load`` and the weighted ones) then send it nothing until a later
report shows it has room; the backend's reporter sends such a report at once
instead of waiting for the next interval. ``eps`` counts rejections too.
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from lookaside.backend.compute import ComputeService
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.validation import MAX_LOAD

#: Rates (requests, errors, CPU, utilisation) are measured over about this many
#: seconds, however often reports go out, so event-driven reports stay steady.
RATE_WINDOW = 1.0


@dataclass(frozen=True, slots=True)
class _Sample:
    wall: float
    cpu: float
    completed: int
    errors: int
    busy: float


class LoadMode(Enum):
    REAL = "real"
    SIMULATED = "simulated"


class LoadSource:
    """Builds one ``LoadReport`` per call, with rates over the last :data:`RATE_WINDOW`."""

    def __init__(
        self,
        service: ComputeService,
        mode: LoadMode = LoadMode.REAL,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._clock = clock
        self._mode = mode
        self._rng = rng or random.Random()
        self._simulated = self._rng.random() * 0.5
        self._samples: deque[_Sample] = deque([self._sample()])
        self._last_rejected = service.counters.rejected
        self._saturated_until = 0.0

    def _sample(self) -> _Sample:
        counters = self._service.counters
        return _Sample(
            wall=self._clock(),
            cpu=time.process_time(),
            completed=counters.completed,
            errors=counters.failed + counters.rejected,
            busy=counters.busy_seconds,
        )

    def _window(self) -> tuple[_Sample, _Sample]:
        """(oldest sample within about RATE_WINDOW, now), remembering now for later."""
        now = self._sample()
        samples = self._samples
        while len(samples) > 1 and now.wall - samples[1].wall >= RATE_WINDOW:
            samples.popleft()
        base = samples[0]
        samples.append(now)
        return base, now

    def _load(self) -> float:
        if self._mode is LoadMode.REAL:
            return self._service.load()
        step = self._rng.uniform(-0.1, 0.1)
        self._simulated = min(1.0, max(0.0, self._simulated + step))
        return self._simulated

    def report(self) -> pb.LoadReport:
        counters = self._service.counters
        base, now = self._window()
        elapsed = max(now.wall - base.wall, 1e-6)
        rps = (now.completed - base.completed) / elapsed
        eps = (now.errors - base.errors) / elapsed
        cpu_share = max(0.0, (now.cpu - base.cpu) / elapsed)
        # Busy worker-seconds finished in the window, or the tasks running now if more.
        utilization = min(1.0, (now.busy - base.busy) / (elapsed * self._service.workers))
        utilization = max(utilization, self._service.utilization())
        load = self._load()
        if counters.rejected > self._last_rejected:
            self._saturated_until = now.wall + RATE_WINDOW
        self._last_rejected = counters.rejected
        if now.wall < self._saturated_until:
            load = max(load, min(self._service.saturation_load(), MAX_LOAD))
        return pb.LoadReport(
            id=self._service.backend_id,
            load=load,
            cpu_utilization=cpu_share,
            application_utilization=utilization,
            rps_fractional=rps,
            eps=eps,
            named_metrics={"queued": float(counters.queued), "running": float(counters.running)},
            requests_in_flight=self._service.in_flight(),
            latency_ms=self._service.latency.estimate_ms(self._service.in_flight()),
        )

    def adjust(self, report: pb.LoadReport) -> None:
        """The agent's report hook: this service's load, utilisation and queue figures.

        Also its latency at the current requests in flight (see
        :mod:`lookaside.backend.latency`) over the agent's plain average, once a
        call has finished: an idle backend then reports its service time, not
        the tail of its last busy spell, which is what ``prequal`` needs.
        """
        own = self.report()
        report.load = own.load
        report.application_utilization = own.application_utilization
        report.named_metrics.update(own.named_metrics)
        if own.latency_ms > 0:
            report.latency_ms = own.latency_ms
