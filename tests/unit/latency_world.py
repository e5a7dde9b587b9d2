"""A tiny deterministic world for the latency policies' unit tests: no sockets, no sleeps.

Each backend serves its picks in ``latency_ms[i]`` each on ``capacity``
workers, first come first served (so its requests in flight are the picks not
yet finished, and a queue makes them wait), and "reports" (a new
:class:`Endpoint` with a fresh ``reported_at``, its RIF and the latency a call
arriving at that RIF would see, as a backend's estimate does) every
``report_gap`` seconds of an injected clock, unless it is stalled: then it
neither finishes nor reports. The test drives picks and counts where they went.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field

from lookaside.model import Endpoint, LoadMetrics, PickRequest
from lookaside.policies import PickTracker, Policy, Snapshot, create
from lookaside.policies.signals import queue_factor


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """``n`` backends under one policy; ``latency_ms[i]`` is what backend i reports."""

    policy_name: str
    n: int = 4
    seed: int = 1
    latency_ms: list[float] = field(default_factory=list)
    capacity: int = 2
    report_gap: float = 0.05
    clock: FakeClock = field(default_factory=FakeClock)
    tracker: PickTracker = field(default_factory=PickTracker)
    stalled: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.latency_ms = self.latency_ms or [20.0] * self.n
        self.finishing: dict[str, list[float]] = {f"b{i}": [] for i in range(self.n)}
        #: When each worker of each backend is next free.
        self.free_at = {f"b{i}": [0.0] * self.capacity for i in range(self.n)}
        self.policy: Policy = create(self.policy_name, random.Random(self.seed), self.clock)
        self.endpoints = {f"b{i}": self._report(i) for i in range(self.n)}
        self._next_report = self.clock.now + self.report_gap

    def _report(self, index: int) -> Endpoint:
        backend_id = f"b{index}"
        now = self.clock.now
        rif = sum(1 for done in self.finishing[backend_id] if done > now)
        self.tracker.reset(backend_id)
        return Endpoint(
            id=backend_id,
            address="10.0.0.1",
            port=5000 + index,
            capacity=self.capacity,
            load=rif / self.capacity,
            reported_at=self.clock.now,
            metrics=LoadMetrics(
                requests_in_flight=rif,
                latency_ms=self.latency_ms[index] * queue_factor(rif, self.capacity),
            ),
        )

    def run(self, seconds: float, picks_per_second: float = 100.0) -> Counter[str]:
        """Pick at a steady rate for ``seconds``; every report rebuilds the picker."""
        counts: Counter[str] = Counter()
        picker = self.policy.build(Snapshot(tuple(self.endpoints.values()), self.tracker))
        end = self.clock.now + seconds
        step = 1.0 / picks_per_second
        while self.clock.now + step <= end + 1e-9:
            self.clock.now += step
            if self.clock.now >= self._next_report - 1e-9:
                self._next_report += self.report_gap
                for index in range(self.n):
                    if f"b{index}" not in self.stalled:
                        self.endpoints[f"b{index}"] = self._report(index)
                picker = self.policy.build(Snapshot(tuple(self.endpoints.values()), self.tracker))
            chosen = picker.pick(PickRequest())
            assert chosen is not None
            counts[chosen.id] += 1
            self._serve(chosen.id, self.clock.now)
        return counts

    def _serve(self, backend_id: str, now: float) -> None:
        """The call starts on the first free worker (at once, or after the queue)."""
        workers = self.free_at[backend_id]
        worker = min(range(len(workers)), key=workers.__getitem__)
        start = max(now, workers[worker])
        if backend_id in self.stalled:
            start = math.inf
        done = start + self.latency_ms[int(backend_id[1:])] / 1e3
        workers[worker] = done
        self.finishing[backend_id].append(done)

    def stall(self, backend_id: str) -> None:
        """Stop answering: nothing finishes and nothing is reported until :meth:`resume`."""
        self.stalled.add(backend_id)
        now = self.clock.now
        self.finishing[backend_id] = [math.inf for done in self.finishing[backend_id] if done > now]

    def resume(self, backend_id: str) -> None:
        """Serve everything that waited, in order, from now on."""
        self.stalled.discard(backend_id)
        now = self.clock.now
        waiting = sum(1 for done in self.finishing[backend_id] if done > now)
        self.finishing[backend_id] = []
        self.free_at[backend_id] = [now] * self.capacity
        for _ in range(waiting):
            self._serve(backend_id, now)


def idle_burst(policy_name: str, seed: int, backends: int = 10, picks: int = 100) -> Counter[str]:
    """``picks`` simultaneous picks (no report in between) over idle, equal backends."""
    clock = FakeClock()
    endpoints = tuple(
        Endpoint(id=f"b{i}", address="10.0.0.1", port=5000 + i, capacity=4,
                 reported_at=clock.now, metrics=LoadMetrics(latency_ms=500.0))
        for i in range(backends)
    )  # fmt: skip
    policy = create(policy_name, random.Random(seed), clock)
    picker = policy.build(Snapshot(endpoints, PickTracker()))
    counts: Counter[str] = Counter()
    for _ in range(picks):
        chosen = picker.pick(PickRequest())
        assert chosen is not None
        counts[chosen.id] += 1
    return counts
