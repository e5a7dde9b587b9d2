"""What a backend says about its load in each report.

``real``: measured from the compute service at report time, plus the
ORCA-shaped figures (utilisation, requests and errors per second over the last
interval, CPU of this process). ``simulated``: the seed's approach, a random
walk in [0, 1], for experiments that want load independent of traffic.

Overload: a backend that rejected a task (``RESOURCE_EXHAUSTED``, queue full)
since its previous report reports at least its *saturation load*, ``(workers +
max_queue) / workers`` — the load at which it starts rejecting — whatever the
mode and even if the burst has passed by report time. Load-aware policies
(``least_load`` and the weighted ones) then send it nothing until a later
report shows it has room; the backend's reporter sends such a report at once
instead of waiting for the next interval. ``eps`` counts rejections too.
"""

from __future__ import annotations

import random
import time
from enum import Enum

from lookaside.compute_service import ComputeService
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.validation import MAX_LOAD


class LoadMode(Enum):
    REAL = "real"
    SIMULATED = "simulated"


class LoadSource:
    """Builds one ``LoadReport`` per call, with rates measured since the previous call."""

    def __init__(
        self,
        service: ComputeService,
        mode: LoadMode = LoadMode.REAL,
        rng: random.Random | None = None,
    ) -> None:
        self._service = service
        self._mode = mode
        self._rng = rng or random.Random()
        self._simulated = self._rng.random() * 0.5
        self._last_wall = time.monotonic()
        self._last_cpu = time.process_time()
        self._last_completed = service.counters.completed
        self._last_errors = service.counters.failed + service.counters.rejected
        self._last_rejected = service.counters.rejected
        self._last_busy = service.counters.busy_seconds

    def _load(self) -> float:
        if self._mode is LoadMode.REAL:
            return self._service.load()
        step = self._rng.uniform(-0.1, 0.1)
        self._simulated = min(1.0, max(0.0, self._simulated + step))
        return self._simulated

    def report(self) -> pb.LoadReport:
        counters = self._service.counters
        wall, cpu = time.monotonic(), time.process_time()
        elapsed = max(wall - self._last_wall, 1e-6)
        errors = counters.failed + counters.rejected
        rps = (counters.completed - self._last_completed) / elapsed
        eps = (errors - self._last_errors) / elapsed
        cpu_share = max(0.0, (cpu - self._last_cpu) / elapsed)
        # Busy worker-seconds finished in the interval, plus the tasks running now.
        busy = counters.busy_seconds - self._last_busy
        utilization = min(1.0, busy / (elapsed * self._service.workers))
        utilization = max(utilization, self._service.utilization())
        self._last_wall, self._last_cpu, self._last_busy = wall, cpu, counters.busy_seconds
        self._last_completed, self._last_errors = counters.completed, errors
        load = self._load()
        if counters.rejected > self._last_rejected:
            load = max(load, min(self._service.saturation_load(), MAX_LOAD))
        self._last_rejected = counters.rejected
        return pb.LoadReport(
            id=self._service.backend_id,
            load=load,
            cpu_utilization=cpu_share,
            application_utilization=utilization,
            rps_fractional=rps,
            eps=eps,
            named_metrics={"queued": float(counters.queued), "running": float(counters.running)},
        )
