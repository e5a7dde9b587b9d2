"""``prequal``: requests in flight and latency from a pool of probes, hot-cold lexicographic.

Wydrowski, Kleinberg, Rumble, Mogul, "Load is not what you should balance:
Introducing Prequal", NSDI '24 (deployed at YouTube). A client keeps a small
*pool* of recent probe answers, each a backend's requests in flight (RIF) and
its latency estimate, and picks by the **hot-cold lexicographic** (HCL) rule:
a probe is *hot* when its RIF is above the ``rif_quantile`` quantile of
recent probes' RIFs (here: the pool's at the last few picks, ``rif_history``
values, so a sudden rise makes every probe hot); among the cold probes take
the lowest latency, and if all are hot the lowest RIF. Latency decides among
backends with room; RIF protects against piling onto the fastest one.

**What the probes are in a look-aside design.** The paper's probes are RPCs a
client sends to random backends. Here every backend already pushes its RIF
and latency estimate (``LoadReport.requests_in_flight`` / ``latency_ms``) to
the LB within 50 ms of any queue change, and the LB streams them on to
fast-path clients. So a *probe* is reading a backend's latest report: free,
no RPC. Each pick probes ``probes_per_pick`` random backends (the paper's
``r_probe``); a report joins the pool only if it is newer than the one the
pool last held for that backend, so a backend that has stopped reporting
cannot be probed back in. What keeps the pool honest is the paper's:

* **bounded size** (``pool_size``, the oldest probe leaves first) and **age**
  (``max_age`` from the report's time): a stalled backend's last report ages
  out. The paper drops probes after 1 s; an idle backend here refreshes its
  report only once per report interval (1 s by default), so the default is
  two intervals, 2 s;
* a **reuse budget**: a probe serves at most ``b_reuse`` picks, the paper's
  ``max(1, 1 + delta / ((1 - m/n) r_probe - r_remove))`` (m = pool size,
  n = backends); where that is undefined because the pool can hold every
  backend, ``max_reuse``. A silent backend therefore absorbs at most that many
  picks per report.

The RIF used is live (reported + picks since + picks in transit, see
:mod:`~lookaside.policies.signals`), which is the paper's local RIF
compensation. The latency is the paper's "estimate at the current RIF" made
live the same way: the report's service time x the queueing factor of the
live RIF, so every pick the LB hands out raises it at once; and at least the
backend's *silence* once the report a pick should have caused is overdue.
Among cold probes whose latencies are within ``latency_tolerance`` of the
lowest, the least loaded (RIF per worker) wins: equal backends' estimates
differ only by noise, which must not decide where a burst goes. The paper removes
``r_remove`` probes per query to keep its pool fresh because every probe
brings news; re-reading an unchanged report brings none, so here probes
leave only by age, size, budget or a newer report. With fewer than two usable
probes a pick falls back to the least RIF among the allowed backends
(silent ones last, random among equals), which never herds.

Pool state lives in the policy (one per service), so it outlives the pickers
rebuilt on every report. A pick is O(pool_size log pool_size) = O(1).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Clock, Picker, PickTracker, Policy, Snapshot
from lookaside.policies.signals import (
    DEFAULT_SILENCE_GRACE,
    DEFAULT_TRANSIT,
    PickTimes,
    in_flight,
    queue_factor,
    service_ms,
    typical_service_ms,
)


@dataclass(frozen=True, slots=True)
class PrequalConfig:
    """Parameters of ``prequal``; the paper's defaults unless noted."""

    #: Backends probed (latest report read) per pick: the paper's r_probe = 3.
    probes_per_pick: int = 3
    #: Most probes in the pool: the paper's m = 16.
    pool_size: int = 16
    #: Seconds after which a probe (from the report's time) is dropped (paper: 1 s; see above).
    max_age: float = 2.0
    #: The paper's delta in the reuse budget formula (1).
    reuse_delta: float = 1.0
    #: The paper's r_remove, probes removed per query, as it enters the reuse budget (1).
    removes_per_pick: float = 1.0
    #: Ours: the reuse budget where the paper's formula is undefined (pool >= backends).
    max_reuse: int = 4
    #: A probe is hot above this quantile of recent probes' RIFs: the paper's Q_RIF = 0.84.
    rif_quantile: float = 0.84
    #: Ours: that quantile is over the pool's RIFs at the last picks, this many (a pool's worth).
    rif_history: int = 16
    #: Ours: latencies within this fraction of the lowest cold one are equal; the least
    #: loaded of them wins (so noise in equal backends' estimates cannot herd picks).
    latency_tolerance: float = 0.2
    #: Ours: seconds of unanswered picks before silence counts as latency.
    silence_grace: float = DEFAULT_SILENCE_GRACE
    #: Ours: seconds before a report within which a pick counts as not yet in it.
    transit: float = DEFAULT_TRANSIT

    def __post_init__(self) -> None:
        if min(self.probes_per_pick, self.max_reuse, self.rif_history) < 1 or self.pool_size < 2:
            raise ValueError(
                "need probes_per_pick, max_reuse and rif_history >= 1 and pool_size >= 2"
            )
        if min(self.reuse_delta, self.removes_per_pick, self.latency_tolerance) < 0:
            raise ValueError("need reuse_delta, removes_per_pick and latency_tolerance >= 0")
        if self.max_age <= 0:
            raise ValueError("need max_age > 0")
        if not 0.0 < self.rif_quantile <= 1.0:
            raise ValueError("rif_quantile must be within (0, 1]")

    def reuse_budget(self, backends: int) -> float:
        """The paper's b_reuse for a service of ``backends``; ``max_reuse`` where undefined."""
        fill = min(self.pool_size, backends) / max(backends, 1)
        denominator = (1.0 - fill) * self.probes_per_pick - self.removes_per_pick
        if denominator <= 0:
            return float(self.max_reuse)
        return min(max(1.0, 1.0 + self.reuse_delta / denominator), float(self.max_reuse))


@dataclass(slots=True)
class _Probe:
    """One backend's report as pooled: its time, the picks it may still serve, a tie-break."""

    reported_at: float
    uses_left: int
    tie: float


class _Pool:
    """The probes, at most one (the newest) per backend, keyed by backend id."""

    __slots__ = ("probes", "rifs", "seen")

    def __init__(self, history: int) -> None:
        self.probes: dict[str, _Probe] = {}
        #: reported_at of the newest report each backend had pooled (consumed ones too).
        self.seen: dict[str, float] = {}
        #: The pool's live RIFs at the last picks: what "hot" is judged against.
        self.rifs: deque[float] = deque(maxlen=history)


def rif_threshold(rifs: list[float], quantile: float) -> float:
    """The ``quantile`` of ``rifs``, interpolated between ranks (numpy's default).

    Hot means strictly above it: when all recent RIFs were equal, any RIF above
    them is hot, and a RIF equal to them is not.
    """
    ordered = sorted(rifs)
    position = quantile * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class PrequalPicker(Picker):
    __slots__ = (
        "_budget",
        "_by_id",
        "_clock",
        "_config",
        "_endpoints",
        "_picks",
        "_pool",
        "_rng",
        "_tracker",
        "_typical_ms",
    )  # fmt: skip

    def __init__(
        self,
        endpoints: tuple[Endpoint, ...],
        tracker: PickTracker,
        policy: Prequal,
    ) -> None:
        self._endpoints = endpoints
        self._by_id = {e.id: e for e in endpoints}
        self._tracker = tracker
        self._pool = policy.pool
        self._picks = policy.picks
        self._config = policy.config
        self._rng = policy.rng
        self._clock = policy.now
        self._budget = policy.config.reuse_budget(len(endpoints))
        self._typical_ms = typical_service_ms(endpoints)

    def pick(self, request: PickRequest) -> Endpoint | None:
        now = self._clock()
        self._probe(now)
        chosen = self._hot_cold(request.exclude_ids, now) or self._least_in_flight(
            request.exclude_ids, now
        )
        if chosen is None:
            return None
        self._picks.picked(chosen, self._tracker, now)
        self._tracker.record(chosen.id)
        return chosen

    def _probe(self, now: float) -> None:
        """Read ``probes_per_pick`` random backends' reports; pool the ones that are news."""
        endpoints = self._endpoints
        count = min(self._config.probes_per_pick, len(endpoints))
        for index in self._rng.sample(range(len(endpoints)), count):
            endpoint = endpoints[index]
            if endpoint.reported_at <= self._pool.seen.get(endpoint.id, -math.inf):
                continue  # nothing new since the last time it was pooled
            if now - endpoint.reported_at > self._config.max_age:
                continue
            self._add(endpoint)

    def _add(self, endpoint: Endpoint) -> None:
        pool = self._pool
        budget = self._budget
        uses = math.floor(budget) + (1 if self._rng.random() < budget % 1 else 0)
        pool.seen[endpoint.id] = endpoint.reported_at
        pool.probes[endpoint.id] = _Probe(endpoint.reported_at, max(uses, 1), self._rng.random())
        if len(pool.probes) > self._config.pool_size:
            oldest = min(pool.probes, key=lambda backend: pool.probes[backend].reported_at)
            del pool.probes[oldest]

    def _usable(self, exclude: frozenset[str], now: float) -> list[tuple[Endpoint, _Probe]]:
        """Pooled probes of live, allowed backends, refreshed by newer reports; stale ones out."""
        pool = self._pool
        usable = []
        for backend_id, probe in list(pool.probes.items()):
            endpoint = self._by_id.get(backend_id)
            if endpoint is None or now - endpoint.reported_at > self._config.max_age:
                del pool.probes[backend_id]  # left the service, or silent for too long
                continue
            if endpoint.reported_at > probe.reported_at:  # a newer report arrived meanwhile
                self._add(endpoint)
                probe = pool.probes[backend_id]
            if backend_id not in exclude:
                usable.append((endpoint, probe))
        return usable

    def _hot_cold(self, exclude: frozenset[str], now: float) -> Endpoint | None:
        usable = self._usable(exclude, now)
        if len(usable) < 2:
            return None
        tracker, picks = self._tracker, self._picks
        rifs = [in_flight(endpoint, tracker, picks) for endpoint, _ in usable]
        history = self._pool.rifs
        threshold = rif_threshold(list(history or rifs), self._config.rif_quantile)
        history.extend(rifs)
        hot = [rif > threshold for rif in rifs]
        all_hot = all(hot)
        candidates = [
            (endpoint, probe, rif)
            for (endpoint, probe), rif, is_hot in zip(usable, rifs, hot, strict=True)
            if all_hot or not is_hot
        ]
        keys: list[tuple[bool, float, float, float]]
        if all_hot:  # the lowest RIF (per worker), then the lowest latency
            keys = [
                (False, rif / e.capacity, self.latency_ms(e, rif, now), p.tie)
                for e, p, rif in candidates
            ]
        else:  # the lowest latency; within the tolerance of it, the least loaded
            latencies = [self.latency_ms(e, rif, now) for e, _, rif in candidates]
            near = min(latencies) * (1.0 + self._config.latency_tolerance)
            keys = [
                (latency > near, rif / e.capacity, latency, p.tie)
                for (e, p, rif), latency in zip(candidates, latencies, strict=True)
            ]
        best = min(range(len(candidates)), key=keys.__getitem__)
        endpoint, probe, _ = candidates[best]
        probe.uses_left -= 1
        if probe.uses_left <= 0:
            del self._pool.probes[endpoint.id]
        return endpoint

    def latency_ms(self, endpoint: Endpoint, rif: float, now: float) -> float:
        """Expected latency of a call sent now: its queue at the live RIF, or its silence."""
        service = service_ms(endpoint) or self._typical_ms
        expected = service * queue_factor(rif, endpoint.capacity)
        return max(expected, self._picks.silent_ms(endpoint, self._tracker, now))

    def _least_in_flight(self, exclude: frozenset[str], now: float) -> Endpoint | None:
        """Too few probes: the least RIF among the allowed backends, silent ones last."""
        allowed = [e for e in self._endpoints if e.id not in exclude]
        if not allowed:
            return None
        tracker, picks = self._tracker, self._picks
        keys = [
            (picks.silent_ms(e, tracker, now) > 0, in_flight(e, tracker, picks)) for e in allowed
        ]
        lowest = min(keys)
        tied = [e for e, key in zip(allowed, keys, strict=True) if key == lowest]
        return tied[0] if len(tied) == 1 else self._rng.choice(tied)


class Prequal(Policy):
    name = "prequal"
    uses_load = True

    def __init__(
        self,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        config: PrequalConfig | None = None,
    ) -> None:
        super().__init__(rng, clock)
        self.config = config or PrequalConfig()
        self.pool = _Pool(self.config.rif_history)
        self.picks = PickTimes(self.config.silence_grace, self.config.transit)

    def now(self) -> float:
        """The injected clock, else ``time.monotonic`` (the registry's default clock)."""
        return self.clock() if self.clock is not None else time.monotonic()

    def build(self, snapshot: Snapshot) -> Picker:
        live = {e.id for e in snapshot.endpoints}
        for gone in set(self.pool.seen) - live:
            self.pool.seen.pop(gone, None)
            self.pool.probes.pop(gone, None)
        self.picks.forget_others(live)
        self.picks.saw(snapshot.endpoints)
        return PrequalPicker(snapshot.endpoints, snapshot.tracker, self)
