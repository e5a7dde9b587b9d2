"""Integer locality weights from what the LB knows, and when a new set is worth pushing.

Stock gRPC clients honour only *locality* weights (gRFC A52 ``wrr_locality``),
and only integers, so every backend becomes its own locality and gets a whole
number here. What the number means depends on the service's policy:

* ``round_robin``, ``pick_first``: every backend weighs 1 (pick_first's order
  is carried by priorities, see :mod:`~lookaside.lb.xds.resources`);
* ``ring_hash``: the static weight given at registration;
* ``least_load`` and ``p2c``: weights that *equalise load* (tasks in flight
  per worker, divided by the static weight), the state ``least_load`` aims
  for. The LB cannot steer each call, so it sets each backend's share to its
  *service rate*: successful calls/s ÷ the share of its workers busy, both
  smoothed over ``rate_smoothing``, or over the time the backend has served
  if shorter, so a fresh figure is ready within a second of traffic and a
  steady one later (the busy share is ``min(load, 1)`` held from one report
  to the next, since reports come when the load changes). A
  backend four times slower serves a quarter of the calls per busy second,
  gets a quarter of the share, and every backend then runs equally busy.
  This is a feed-forward estimate: the fixed point is reached as soon as the
  figures are, without waiting for loads to drift apart and back. It does not
  spiral: less traffic lowers calls/s and busy share alike, and a backend too
  idle to measure (busy below :data:`BUSY_FLOOR`) gets the mean rate per
  worker, so it is measured again. (A58's ``qps / utilization`` from each
  report is the same idea, but the utilisation backends report counts the
  tasks running at that instant, which is too noisy here.)

  On top, a *queue factor* drains a backend that queues (e.g. in the first
  seconds, while the weights were still equal): each weight is multiplied by
  ``(max(mean, 1) / max(load, 1)) ** queue_gain`` on the smoothed loads, so
  only loads above one task per worker differ. It is proportional, with no
  memory, so it cannot wind up.

  Why not an integral controller on the load alone, as before: the queue
  already integrates any mismatch between a backend's share and its rate, so
  two integrators sat in one loop, and behind the smoothing lag and the push
  gap they overshot: a slow backend kept its queue (its load stayed high)
  after its weight was cut enough, was cut further, drained and swung back
  (between about 5 and 45 of 100 in the lab's heterogeneous run).
  ``tests/unit/test_xds_weights.py`` shows both on a simulated fleet.

  That controller remains the fallback while fewer than two backends report
  a rate: ``(mean / load) ** (dt / adapt_period)`` per step in log space,
  whose only fixed point is equal load; it resumes from the weights last
  computed. Weights start at ``capacity x static weight``.
* ``weighted_round_robin``: the weight gRFC A58 computes from the report,
  ``qps / (utilization + eps / qps * penalty)``
  (:func:`~lookaside.policies.weighted_round_robin.reported_weight`), smoothed;
  backends without one get the mean (as A58 does), and with fewer than two
  every backend gets ``capacity x static weight``.

Loads and A58 figures are smoothed by an exponential moving average over
``smoothing`` seconds of report time; weights are bounded to ``[mean /
max_ratio, mean x max_ratio]`` and scaled so the heaviest is ``resolution``.

Damping (:func:`worth_pushing`): a new set is pushed when membership changed,
or when some backend's share of the total moved by more than ``threshold`` of
its old share; the publisher adds the minimum gap between two weight pushes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lookaside.lb.xds.config import XdsConfig
from lookaside.model import Endpoint
from lookaside.policies.weighted_round_robin import WrrConfig, reported_weight

#: Policies whose xDS weights equalise reported load.
LOAD_AWARE = frozenset({"least_load", "p2c"})
#: Policies whose xDS weights are A58's, from the ORCA-shaped report.
A58 = frozenset({"weighted_round_robin"})
#: Policies whose xDS weights are the static registration weight.
STATIC = frozenset({"ring_hash"})

#: A58's error penalty: the same default the LB's own weighted_round_robin uses.
_A58_PENALTY = WrrConfig().error_utilization_penalty
#: Added to every load before comparing, so near-idle backends (noise) keep their weights.
LOAD_EPSILON = 0.05
#: A backend busier than this share of its workers has a measurable service rate;
#: one less busy gets the mean rate per worker (its calls/s is mostly noise).
BUSY_FLOOR = 0.05
#: Seconds: the shortest average of a backend's rate, about the window its calls/s cover.
RATE_WARMUP = 1.0

_Sampler = Callable[[Endpoint], float]


@dataclass(slots=True)
class _Backend:
    """One backend's smoothed figure and weight; restarts when it (re)registers."""

    registered_at: float
    unit: float  # capacity x static weight when it joined
    level: float  # its weight before scaling to integers
    reported_at: float = -math.inf
    figure: float = 0.0  # smoothed load (load-aware) or A58 weight
    known: bool = False
    # load-aware: smoothed successful calls/s and share of workers busy, min(load, 1)
    # held from one report to the next (reports come when the load changes)
    rate: float = 0.0
    busy: float = 0.0
    held_busy: float = 0.0
    rated: bool = False
    serving_since: float | None = None  # its first report with traffic


def _static(endpoint: Endpoint) -> float:
    return endpoint.weight if endpoint.weight > 0 else 1.0  # 0 means "not given"


def _initial(endpoint: Endpoint) -> float:
    return max(endpoint.capacity, 1) * _static(endpoint)


class WeightEstimator:
    """Per service: its backends' smoothed figures and the integer weights from them."""

    def __init__(self, config: XdsConfig) -> None:
        self.config = config
        self._backends: dict[str, _Backend] = {}
        self._stepped_at: float | None = None

    def weights(self, policy: str, endpoints: tuple[Endpoint, ...], now: float) -> dict[str, int]:
        """Integer weight (>= 1) per backend id, for the service's policy, at time ``now``."""
        if policy in LOAD_AWARE:
            self._observe(endpoints, lambda e: e.load, rated=True)
            raw = self._equalise(endpoints, now)
        elif policy in A58:
            self._observe(endpoints, lambda e: reported_weight(e, _A58_PENALTY))
            raw = self._a58(endpoints)
        elif policy in STATIC:
            raw = [_static(e) for e in endpoints]
        else:
            raw = [1.0] * len(endpoints)
        return dict(zip((e.id for e in endpoints), to_integers(raw, self.config), strict=True))

    def _observe(
        self, endpoints: tuple[Endpoint, ...], sample_of: _Sampler, rated: bool = False
    ) -> None:
        """Fold each backend's newest report into its average; forget backends that left."""
        backends: dict[str, _Backend] = {}
        per_unit: float | None = None  # the incumbents' mean, computed once: O(n), not O(n²)
        for endpoint in endpoints:
            backend = self._backends.get(endpoint.id)
            if backend is None or backend.registered_at != endpoint.registered_at:
                unit = _initial(endpoint)
                if per_unit is None:
                    per_unit = self._level_per_unit()
                backend = _Backend(endpoint.registered_at, unit, per_unit * unit)
            if endpoint.reported_at > 0 and endpoint.reported_at >= backend.reported_at:
                if rated and endpoint.reported_at > backend.reported_at:
                    self._fold_rate(backend, endpoint)
                self._fold(backend, sample_of(endpoint), endpoint.reported_at)
            backends[endpoint.id] = backend
        self._backends = backends

    def _level_per_unit(self) -> float:
        """A newcomer weighs what the others weigh on average per unit of capacity x static."""
        if not self._backends:
            return 1.0
        return sum(b.level / b.unit for b in self._backends.values()) / len(self._backends)

    def _fold(self, backend: _Backend, sample: float, at: float) -> None:
        if sample < 0 or not math.isfinite(sample):
            return
        if not backend.known or self.config.smoothing <= 0:
            backend.figure, backend.known, backend.reported_at = sample, True, at
            return
        alpha = 1.0 - math.exp(-(at - backend.reported_at) / self.config.smoothing)
        backend.figure += alpha * (sample - backend.figure)
        backend.reported_at = at

    def _fold_rate(self, backend: _Backend, endpoint: Endpoint) -> None:
        """Smooth calls/s and the busy share, the latter held since the previous report."""
        rate = endpoint.metrics.rps_fractional - endpoint.metrics.eps
        if not (math.isfinite(rate) and math.isfinite(endpoint.load)) or endpoint.load < 0:
            return
        rate = max(rate, 0.0)
        at = endpoint.reported_at
        if backend.serving_since is None and (rate > 0 or endpoint.load > 0):
            backend.serving_since = at
        # A long average is steady, but the first seconds of traffic matter most:
        # until the backend has served that long, average over what it has served.
        period = self.config.rate_smoothing
        if backend.serving_since is not None:
            period = min(period, max(at - backend.serving_since, RATE_WARMUP))
        if not backend.rated or period <= 0:
            backend.rate, backend.busy, backend.rated = rate, backend.held_busy, True
        else:
            alpha = 1.0 - math.exp(-(at - backend.reported_at) / period)
            backend.rate += alpha * (rate - backend.rate)
            backend.busy += alpha * (backend.held_busy - backend.busy)
        backend.held_busy = min(endpoint.load, 1.0)

    def _service_rates(
        self, backends: list[_Backend], endpoints: tuple[Endpoint, ...]
    ) -> list[float] | None:
        """Calls/s each backend serves fully busy, x its static weight; None: under two known."""
        per_worker: list[float | None] = [
            b.rate / b.busy / max(e.capacity, 1)
            if b.rated and b.busy >= BUSY_FLOOR and b.rate > 0
            else None
            for b, e in zip(backends, endpoints, strict=True)
        ]
        known = [r for r in per_worker if r is not None]
        if len(known) < 2:
            return None
        mean = sum(known) / len(known)
        return [
            (mean if r is None else r) * max(e.capacity, 1) * _static(e)
            for r, e in zip(per_worker, endpoints, strict=True)
        ]

    def _equalise(self, endpoints: tuple[Endpoint, ...], now: float) -> list[float]:
        """Service rate x queue factor; the integral controller while rates are unknown."""
        backends = [self._backends[e.id] for e in endpoints]
        rates = self._service_rates(backends, endpoints)
        if rates is None:
            return self._integrate(backends, endpoints, now)
        self._stepped_at = now
        loads = [b.figure / _static(e) for b, e in zip(backends, endpoints, strict=True)]
        known = [load for b, load in zip(backends, loads, strict=True) if b.known]
        floor = max(sum(known) / len(known), 1.0) if known else 1.0
        gain = self.config.queue_gain
        raw = [
            rate * (floor / max(load, 1.0)) ** gain if b.known else rate
            for rate, b, load in zip(rates, backends, loads, strict=True)
        ]
        mean = sum(raw) / len(raw)
        low, high = mean / self.config.max_ratio, mean * self.config.max_ratio
        for backend, weight in zip(backends, raw, strict=True):
            # The integral controller, should rates stop, resumes from here (no wind-up).
            backend.level = min(max(weight, low), high)
        return [b.level for b in backends]

    def _integrate(
        self, backends: list[_Backend], endpoints: tuple[Endpoint, ...], now: float
    ) -> list[float]:
        """One integral-controller step: levels move towards equal load per unit of static."""
        dt = 0.0 if self._stepped_at is None else max(now - self._stepped_at, 0.0)
        self._stepped_at = now
        known = [(b, b.figure / _static(e)) for b, e in zip(backends, endpoints, strict=True)]
        known = [(b, load) for b, load in known if b.known]
        if dt > 0 and len(known) >= 2:
            mean = sum(load for _, load in known) / len(known)
            exponent = min(1.0, dt / self.config.adapt_period)
            for backend, load in known:
                backend.level *= ((mean + LOAD_EPSILON) / (load + LOAD_EPSILON)) ** exponent
            self._bound(backends)
        return [b.level for b in backends]

    def _bound(self, backends: list[_Backend]) -> None:
        mean = sum(b.level for b in backends) / len(backends)
        low, high = mean / self.config.max_ratio, mean * self.config.max_ratio
        for backend in backends:
            backend.level = min(max(backend.level, low), high)

    def _a58(self, endpoints: tuple[Endpoint, ...]) -> list[float]:
        backends = [self._backends[e.id] for e in endpoints]
        known = [b.figure for b in backends if b.known and b.figure > 0]
        if len(known) < 2:
            return [_initial(e) for e in endpoints]
        mean = sum(known) / len(known)
        low, high = mean / self.config.max_ratio, mean * self.config.max_ratio
        return [
            (min(max(b.figure, low), high) if b.known and b.figure > 0 else mean) * _static(e)
            for b, e in zip(backends, endpoints, strict=True)
        ]


def to_integers(raw: list[float], config: XdsConfig) -> list[int]:
    """Scale so the heaviest is ``resolution``; everyone gets at least 1 (0 would drop it)."""
    if not raw:
        return []
    heaviest = max(raw)
    if heaviest <= 0 or not math.isfinite(heaviest):
        return [1] * len(raw)
    return [max(1, round(w / heaviest * config.resolution)) for w in raw]


def worth_pushing(old: Mapping[str, int], new: Mapping[str, int], threshold: float) -> bool:
    """True when membership differs or some backend's share moved by more than ``threshold``."""
    if old.keys() != new.keys():
        return True
    old_total, new_total = sum(old.values()), sum(new.values())
    if not old_total or not new_total:
        return old != new
    for backend_id, weight in new.items():
        old_share = old[backend_id] / old_total
        if abs(weight / new_total - old_share) > threshold * old_share:
            return True
    return False
