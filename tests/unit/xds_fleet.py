"""A simulated fleet behind the real registry, balancer and xDS publisher (no sockets).

Discrete events on a fake clock: Poisson arrivals, each sent to a backend drawn
by the weights the publisher last pushed (a stock client's ``weighted_target``
picks localities at random by weight); backends with ``workers`` slots, a FIFO
queue and fixed service times (+0-5 %). Each backend reports ``in flight /
workers`` and its calls/s over about the last second when its load changes (at
most once per :data:`REPORT_GAP`) and every :data:`REPORT_INTERVAL`, as the
lab's backends do. The lab's ``heterogeneous`` scenario, minus the processes.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from lookaside.lb.xds.config import XdsConfig
from lookaside.model import LoadMetrics, Registration
from tests.unit.xds_fakes import Plane, plane

REPORT_GAP = 0.05  # the backend reporter's least gap between two reports
REPORT_INTERVAL = 1.0  # and its longest
RATE_WINDOW = 1.0  # its rates cover about this many seconds


@dataclass
class SimBackend:
    id: str
    workers: int
    service_s: float
    running: int = 0
    queue: deque[float] = field(default_factory=deque)  # arrival times
    completed: int = 0
    samples: deque[tuple[float, int]] = field(default_factory=deque)  # (time, completed)
    reported_at: float = -1.0
    report_due: bool = False

    @property
    def in_flight(self) -> int:
        return self.running + len(self.queue)


@dataclass
class FleetRun:
    calls: list[tuple[float, float]]  # (arrival, latency) in seconds, of every finished call
    pushes: list[tuple[float, dict[str, int]]]  # (time, weights) of every weight push

    def percentile(self, p: float, since: float = 0.0) -> float:
        """The ``p``-th percentile latency of the calls that arrived after ``since``."""
        ordered = sorted(latency for arrived, latency in self.calls if arrived >= since)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def swing(self, backend_ids: list[str], since: float) -> float:
        """Largest / smallest share of ``backend_ids`` together over the pushes after ``since``."""
        shares = [
            sum(w[i] for i in backend_ids) / sum(w.values()) for t, w in self.pushes if t >= since
        ]
        return max(shares) / min(shares)

    def shares(self, backend_id: str, since: float = 0.0) -> list[float]:
        """The backend's share of the pushed weight at every push after ``since``."""
        return [w[backend_id] / sum(w.values()) for t, w in self.pushes if t >= since]


class Fleet:
    """Backends ``id -> service seconds``, all with ``workers``; Poisson at ``load_factor``."""

    def __init__(
        self,
        service_s: dict[str, float],
        workers: int = 2,
        load_factor: float = 0.7,
        config: XdsConfig | None = None,
        seed: int = 1,
        report_rates: bool = True,
    ) -> None:
        self.report_rates = report_rates  # False: load only (the integral fallback)
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self.plane: Plane = plane("least_load", config or XdsConfig(), schedule=self._later)
        self.clock = self.plane.clock
        self.start = self.clock.now
        self.rng = random.Random(seed)
        self.backends = {i: SimBackend(i, workers, s) for i, s in service_s.items()}
        for port, b in enumerate(self.backends.values(), 9000):
            self.plane.registry.register(
                Registration(b.id, "127.0.0.1", port, "compute", capacity=workers)
            )
        self.rate = load_factor * sum(b.workers / b.service_s for b in self.backends.values())
        self.calls: list[tuple[float, float]] = []
        self.pushes: list[tuple[float, dict[str, int]]] = []
        self.weights = self.plane.publisher.weights("compute")
        self.plane.publisher.add_listener(self._pushed)

    def _pushed(self) -> None:
        weights = self.plane.publisher.weights("compute")
        if weights != self.weights:
            self.weights = weights
            self.pushes.append((self.clock.now - self.start, weights))

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        self._at(self.clock.now + delay, callback)

    def _at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._order), callback))

    def run(self, seconds: float) -> FleetRun:
        end = self.start + seconds
        self._at(self.clock.now + self.rng.expovariate(self.rate), self._arrive)
        for b in self.backends.values():  # reporting for a while before traffic starts
            b.samples.append((self.clock.now - self.rng.random() * 2 * RATE_WINDOW, 0))
            self._at(self.clock.now + self.rng.random() * REPORT_INTERVAL, self._tick(b))
        while self._events and self._events[0][0] <= end:
            when, _, callback = heapq.heappop(self._events)
            self.clock.now = when
            callback()
        return FleetRun(self.calls, self.pushes)

    def _arrive(self) -> None:
        ids, weights = zip(*self.weights.items(), strict=True)
        b = self.backends[self.rng.choices(ids, weights)[0]]
        b.queue.append(self.clock.now)
        self._start_work(b)
        self._changed(b)
        self._at(self.clock.now + self.rng.expovariate(self.rate), self._arrive)

    def _start_work(self, b: SimBackend) -> None:
        while b.running < b.workers and b.queue:
            arrived = b.queue.popleft()
            b.running += 1
            work = b.service_s * (1 + 0.05 * self.rng.random())
            self._at(self.clock.now + work, lambda b=b, arrived=arrived: self._finish(b, arrived))

    def _finish(self, b: SimBackend, arrived: float) -> None:
        b.running -= 1
        self.calls.append((arrived - self.start, self.clock.now - arrived))
        b.completed += 1
        self._start_work(b)
        self._changed(b)

    def _changed(self, b: SimBackend) -> None:
        """Report at once, or once the least gap since the last report has passed."""
        if b.report_due:
            return
        wait = b.reported_at + REPORT_GAP - self.clock.now
        if wait <= 0:
            self._report(b)
        else:
            b.report_due = True
            self._later(wait, lambda: self._report(b))

    def _tick(self, b: SimBackend) -> Callable[[], None]:
        def tick() -> None:
            if self.clock.now - b.reported_at >= REPORT_INTERVAL - 1e-9:
                self._report(b)
            self._at(b.reported_at + REPORT_INTERVAL, tick)

        return tick

    def _report(self, b: SimBackend) -> None:
        now = self.clock.now
        b.report_due = False
        b.reported_at = now
        # The backend's rate: completions since its newest sample at least a second old.
        samples = b.samples
        while len(samples) > 1 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        base = samples[0] if samples else (now - RATE_WINDOW, 0)
        samples.append((now, b.completed))
        rps = (b.completed - base[1]) / max(now - base[0], 1e-6)
        metrics = LoadMetrics(
            rps_fractional=rps if self.report_rates else 0.0, requests_in_flight=b.in_flight
        )
        self.plane.registry.report(b.id, b.in_flight / b.workers, metrics)
