"""``weighted_round_robin``: round robin weighted by what each backend reports it can do.

gRFC A58 (gRPC's client-side ``weighted_round_robin``; Envoy's
``client_side_weighted_round_robin``). A backend's weight is

    qps / (utilization + eps / qps * error_utilization_penalty)

from its ORCA-shaped report (:class:`~lookaside.model.LoadMetrics`), where
utilization is ``application_utilization`` when reported, else
``cpu_utilization``. A backend twice as fast serves twice the qps at the same
utilization, so it gets twice the picks; errors count as extra utilization.

Weights are only trusted when they are steady, as A58 prescribes:

* **blackout**: a weight is not used until ``blackout_period`` has passed since
  the first non-zero report (after a (re)join, or after the weight expired);
* **expiry**: a weight whose last non-zero report is ``weight_expiration_period``
  old is dropped, and the blackout starts again with the next report;
* backends without a usable weight get the mean of the usable weights; with
  fewer than two usable weights every backend weighs the same (round robin).

Usable weights are then bounded to ``[min_weight_ratio, max_weight_ratio]`` times
their mean (0.01 and 10), as gRPC C-core's scheduler does: no backend with a
weight falls below 1 % of the mean, and none rises above 10 times it (a cap that
can only bind with more than 10 backends, since the mean includes the outlier).

The static ``Endpoint.weight`` (given at registration, default 1) multiplies the
result: it stays the operator's lever (a canary at 0.1, a drain) on top of what
the reports say. It is applied after the mean and the bounds, so with the
default of 1 everywhere the policy is exactly A58.

Picks come from an earliest-deadline-first scheduler
(:class:`~lookaside.policies.edf.EdfScheduler`), so they interleave smoothly,
O(log n) each. The policy keeps per-backend weight state between pickers. As
in A58, weights are recomputed at most every ``weight_update_period`` (1 s): a
load report updates its backend's weight record in O(1) and the endpoint the
picker hands out, and rebuilds the scheduler (O(n)) only when the last
recomputation is older than the period. With n backends reporting once a second
that is one O(n) rebuild per second, O(1) per report.

Time comes from the policy's injected clock, else ``Snapshot.now``, and must be
the registry's clock because report times (``Endpoint.reported_at``) come from it.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Clock, Picker, Policy, Snapshot, SnapshotSource
from lookaside.policies.edf import EdfScheduler


@dataclass(frozen=True, slots=True)
class WrrConfig:
    """Parameters of ``weighted_round_robin``; defaults are A58's unless noted.

    The LB gets a report from every backend about once a second, so the A58
    defaults (chosen for per-call reports) are conservative here; the lab may
    shorten ``blackout_period`` to a few report intervals.
    """

    #: Seconds of steady non-zero reports before a weight is used (A58: 10 s).
    blackout_period: float = 10.0
    #: Seconds without a non-zero report after which a weight is dropped (A58: 3 min).
    weight_expiration_period: float = 180.0
    #: Multiplier of the error rate ``eps / qps`` added to utilization (A58: 1.0).
    error_utilization_penalty: float = 1.0
    #: Usable weights are capped at this many times their mean (gRPC C-core: 10).
    max_weight_ratio: float = 10.0
    #: Least seconds between two recomputations of the weights on reports (A58: 1 s).
    weight_update_period: float = 1.0
    #: ... and raised to at least this fraction of their mean (gRPC C-core: 0.01).
    min_weight_ratio: float = 0.01

    def __post_init__(self) -> None:
        if self.blackout_period < 0:
            raise ValueError("blackout_period must not be negative")
        if self.weight_expiration_period <= 0:
            raise ValueError("weight_expiration_period must be positive")
        if self.weight_update_period < 0:
            raise ValueError("weight_update_period must not be negative")
        if self.error_utilization_penalty < 0:
            raise ValueError("error_utilization_penalty must not be negative")
        if not 0 < self.min_weight_ratio <= 1 <= self.max_weight_ratio:
            raise ValueError("need 0 < min_weight_ratio <= 1 <= max_weight_ratio")


def reported_weight(endpoint: Endpoint, error_utilization_penalty: float) -> float:
    """A58's weight from the endpoint's last report; 0 when the report says nothing."""
    metrics = endpoint.metrics
    qps = metrics.rps_fractional
    utilization = metrics.application_utilization
    if utilization <= 0:
        utilization = metrics.cpu_utilization
    if utilization > 0 and qps > 0:
        utilization += metrics.eps / qps * error_utilization_penalty
    if utilization <= 0 or qps <= 0:
        return 0.0
    weight = qps / utilization
    return weight if math.isfinite(weight) else 0.0


@dataclass(slots=True)
class _WeightState:
    """A58's per-endpoint record: the weight and its two timestamps."""

    registered_at: float
    weight: float = 0.0
    last_report: float = -math.inf  # reported_at of the last report seen
    last_updated: float = -math.inf  # time of the last non-zero report
    non_empty_since: float | None = None  # first non-zero report since (re)join/expiry

    def update(self, endpoint: Endpoint, penalty: float) -> None:
        if endpoint.reported_at <= self.last_report:
            return  # no new report since the last build
        self.last_report = endpoint.reported_at
        weight = reported_weight(endpoint, penalty)
        if weight <= 0:
            return
        if self.non_empty_since is None:
            self.non_empty_since = endpoint.reported_at
        self.last_updated = endpoint.reported_at
        self.weight = weight

    def usable(self, now: float, config: WrrConfig) -> float:
        if now - self.last_updated >= config.weight_expiration_period:
            self.non_empty_since = None
            return 0.0
        if self.non_empty_since is None or now - self.non_empty_since < config.blackout_period:
            return 0.0
        return self.weight


def final_weights(usable: list[float], static: list[float], config: WrrConfig) -> list[float]:
    """Fill gaps with the mean, bound to the mean's ratios, multiply the static weights."""
    known = [w for w in usable if w > 0]
    if len(known) < 2:
        return list(static)
    mean = sum(known) / len(known)
    low, high = mean * config.min_weight_ratio, mean * config.max_weight_ratio
    return [
        (min(max(w, low), high) if w > 0 else mean) * s for w, s in zip(usable, static, strict=True)
    ]


class WeightedRoundRobinPicker(Picker):
    __slots__ = ("_index", "_scheduler")

    def __init__(self, endpoints: tuple[Endpoint, ...], scheduler: EdfScheduler[Endpoint]) -> None:
        self._scheduler = scheduler
        self._index = {e.id: i for i, e in enumerate(endpoints)}

    def replace(self, endpoint: Endpoint) -> bool:
        """Hand out ``endpoint`` (a newer report of a member) at its weight; O(1)."""
        index = self._index.get(endpoint.id)
        if index is None:
            return False
        self._scheduler.replace_item(index, endpoint)
        return True

    def pick(self, request: PickRequest) -> Endpoint | None:
        exclude = request.exclude_ids
        if not exclude:
            return self._scheduler.pick()
        return self._scheduler.pick(lambda e: e.id not in exclude)


class WeightedRoundRobin(Policy):
    name = "weighted_round_robin"
    uses_load = True

    def __init__(
        self,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        config: WrrConfig | None = None,
    ) -> None:
        super().__init__(rng, clock)
        self.config = config or WrrConfig()
        self._states: dict[str, _WeightState] = {}
        self._built_at = -math.inf
        #: The weights the last picker was built with, by backend id (for logs and tests).
        self.weights: dict[str, float] = {}

    def _now(self, snapshot: Snapshot) -> float:
        if self.clock is not None:
            return self.clock()
        # Snapshot.now is 0.0 when the balancer has no clock; the registry's default
        # clock is time.monotonic, so that is the consistent fallback.
        return snapshot.now or time.monotonic()

    def build(self, snapshot: Snapshot) -> Picker:
        now = self._now(snapshot)
        endpoints = snapshot.endpoints
        states: dict[str, _WeightState] = {}
        for endpoint in endpoints:
            state = self._states.get(endpoint.id)
            if state is None or state.registered_at != endpoint.registered_at:
                state = _WeightState(registered_at=endpoint.registered_at)  # (re)joined
            state.update(endpoint, self.config.error_utilization_penalty)
            states[endpoint.id] = state
        self._states = states  # backends that left are forgotten
        usable = [states[e.id].usable(now, self.config) for e in endpoints]
        static = [e.weight if e.weight > 0 else 1.0 for e in endpoints]  # 0 means "not given"
        weights = final_weights(usable, static, self.config)
        self.weights = {e.id: w for e, w in zip(endpoints, weights, strict=True)}
        self._built_at = now
        return WeightedRoundRobinPicker(endpoints, EdfScheduler(endpoints, weights, self.rng))

    def update(self, picker: Picker, endpoint: Endpoint, snapshot: SnapshotSource) -> Picker:
        """Record the report, O(1); recompute the weights once a period, O(n)."""
        state = self._states.get(endpoint.id)
        if (
            not isinstance(picker, WeightedRoundRobinPicker)
            or state is None
            or state.registered_at != endpoint.registered_at
            or not picker.replace(endpoint)
        ):
            return super().update(picker, endpoint, snapshot)
        state.update(endpoint, self.config.error_utilization_penalty)
        now = self.clock() if self.clock is not None else endpoint.reported_at or time.monotonic()
        if now - self._built_at >= self.config.weight_update_period:
            return self.build(snapshot())
        return picker
