"""``peak_ewma``: latency EWMA that jumps to peaks, times requests in flight, by two choices.

Finagle's ``PeakEwma`` balancer (``Balancers.p2cPeakEwma``) and Tower's / Linkerd's
``PeakEwma`` load: each backend's *cost* is an exponentially weighted moving
average of its latency that **jumps to any observation above it at once** and
otherwise decays towards new observations with time constant ``decay_time``
(weight ``exp(-elapsed / decay_time)``), also decaying towards zero while
nothing is observed, so an idle backend is tried again. The load compared is

    latency estimate x (requests in flight + 1)

(per unit of capacity, below), and a pick is power of two choices
(Mitzenmacher): two distinct random backends, the cheaper wins (see
:mod:`~lookaside.policies.p2c`).

Observations, in a look-aside design: every new load report's service time
(its ``latency_ms`` without the queue it was reported at, see
:mod:`~lookaside.policies.signals`), so the queue is counted once, by the
live requests in flight, and per unit of capacity:
``cost = latency x (in flight + 1) / capacity``. A backend's *silence* (picks
left unanswered once the report they should have caused is overdue) counts
as latency while it lasts, not as a remembered peak: a stalled backend costs
more within ~30-80 ms and p2c stops choosing it; its next report ends that,
and a report delayed by a busy machine costs nothing once it arrives. Until
a backend's first observation its latency is the service's median (else
``default_latency_ms``, Tower's ``default_rtt``).

Finagle defaults ``decay_time`` to 10 s for per-request latencies over large
clusters. Here the observations are reports and a service may have a handful
of backends, so a 10 s memory of one slow spell would take a quarter of a
four-backend service's capacity away for that long; the default is 1 s.

A pick is O(1). State (one EWMA per backend) lives in the policy, so it
outlives the pickers rebuilt on every report.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Clock, Picker, PickTracker, Policy, Snapshot
from lookaside.policies.p2c import COMPARE_ALL_AT_MOST
from lookaside.policies.signals import (
    DEFAULT_SILENCE_GRACE,
    DEFAULT_TRANSIT,
    PickTimes,
    in_flight,
    service_ms,
    typical_service_ms,
)


@dataclass(frozen=True, slots=True)
class PeakEwmaConfig:
    """Parameters of ``peak_ewma``."""

    #: Seconds of the EWMA's time constant (Finagle: 10 s; see the module docstring).
    decay_time: float = 1.0
    #: Cost of a backend with no latency observed yet, ms (Tower's ``default_rtt``).
    default_latency_ms: float = 30.0
    #: Seconds of unanswered picks before silence counts as latency.
    silence_grace: float = DEFAULT_SILENCE_GRACE
    #: Ours: seconds before a report within which a pick counts as not yet in it.
    transit: float = DEFAULT_TRANSIT

    def __post_init__(self) -> None:
        if self.decay_time <= 0 or self.default_latency_ms <= 0:
            raise ValueError("decay_time and default_latency_ms must be positive")


@dataclass(slots=True)
class PeakEwmaEstimate:
    """One backend's latency estimate (ms) as of ``stamp``."""

    cost_ms: float
    stamp: float
    observed: bool = False
    reported_at: float = -math.inf

    def observe(self, latency_ms: float, now: float, decay_time: float) -> None:
        """Jump to a peak at once; otherwise move towards the observation with time."""
        if latency_ms > self.cost_ms or not self.observed:
            self.cost_ms = latency_ms
        else:
            weight = math.exp(-max(now - self.stamp, 0.0) / decay_time)
            self.cost_ms = self.cost_ms * weight + latency_ms * (1.0 - weight)
        self.stamp = max(now, self.stamp)
        self.observed = True

    def current(self, now: float, decay_time: float) -> float:
        """The estimate decayed to ``now`` (towards zero while nothing is observed)."""
        return self.cost_ms * math.exp(-max(now - self.stamp, 0.0) / decay_time)


class PeakEwmaPicker(Picker):
    __slots__ = (
        "_clock",
        "_config",
        "_default_ms",
        "_endpoints",
        "_estimates",
        "_picks",
        "_rng",
        "_tracker",
    )  # fmt: skip

    def __init__(self, endpoints: tuple[Endpoint, ...], tracker: PickTracker, policy: PeakEwma):
        self._endpoints = endpoints
        self._tracker = tracker
        self._estimates = policy.estimates
        self._picks = policy.picks
        self._config = policy.config
        self._rng = policy.rng
        self._clock = policy.now
        self._default_ms = typical_service_ms(endpoints) or policy.config.default_latency_ms

    def cost(self, endpoint: Endpoint, now: float) -> float:
        """Latency estimate (or silence, when longer) x (requests in flight + 1) / capacity."""
        estimate = self._estimates[endpoint.id]
        decay = self._config.decay_time
        latency = estimate.current(now, decay) if estimate.observed else self._default_ms
        latency = max(latency, self._picks.silent_ms(endpoint, self._tracker, now))
        rif = in_flight(endpoint, self._tracker, self._picks)
        return latency * (rif + 1.0) / endpoint.capacity

    def pick(self, request: PickRequest) -> Endpoint | None:
        exclude = request.exclude_ids
        allowed = self._endpoints
        if exclude:
            allowed = tuple(e for e in allowed if e.id not in exclude)
        if not allowed:
            return None
        now = self._clock()
        if len(allowed) <= COMPARE_ALL_AT_MOST:
            candidates: list[Endpoint] | tuple[Endpoint, ...] = allowed
        else:
            candidates = self._rng.sample(allowed, 2)  # two distinct, uniformly
        costs = [self.cost(e, now) for e in candidates]
        lowest = min(costs)
        tied = [e for e, c in zip(candidates, costs, strict=True) if c == lowest]
        chosen = tied[0] if len(tied) == 1 else self._rng.choice(tied)
        self._picks.picked(chosen, self._tracker, now)
        self._tracker.record(chosen.id)
        return chosen


class PeakEwma(Policy):
    name = "peak_ewma"
    uses_load = True

    def __init__(
        self,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        config: PeakEwmaConfig | None = None,
    ) -> None:
        super().__init__(rng, clock)
        self.config = config or PeakEwmaConfig()
        self.estimates: dict[str, PeakEwmaEstimate] = {}
        self.picks = PickTimes(self.config.silence_grace, self.config.transit)

    def now(self) -> float:
        """The injected clock, else ``time.monotonic`` (the registry's default clock)."""
        return self.clock() if self.clock is not None else time.monotonic()

    def build(self, snapshot: Snapshot) -> Picker:
        """Observe every report that is new since the last build; forget departed backends."""
        now = self.now()
        estimates: dict[str, PeakEwmaEstimate] = {}
        for endpoint in snapshot.endpoints:
            estimate = self.estimates.get(endpoint.id) or PeakEwmaEstimate(0.0, now)
            latency = service_ms(endpoint)
            if endpoint.reported_at > estimate.reported_at:
                estimate.reported_at = endpoint.reported_at
                if latency > 0:
                    estimate.observe(latency, now, self.config.decay_time)
            estimates[endpoint.id] = estimate
        self.estimates = estimates
        self.picks.forget_others(set(estimates))
        self.picks.saw(snapshot.endpoints)
        return PeakEwmaPicker(snapshot.endpoints, snapshot.tracker, self)
