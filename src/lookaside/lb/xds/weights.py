"""Integer locality weights from what the LB knows, and when a new set is worth pushing.

Stock gRPC clients honour only *locality* weights (gRFC A52 ``wrr_locality``),
and only integers, so every backend becomes its own locality and gets a whole
number here. What the number means depends on the service's policy:

* ``round_robin``, ``pick_first``: every backend weighs 1 (pick_first's order
  is carried by priorities, see :mod:`~lookaside.lb.xds.resources`);
* ``ring_hash``: the static weight given at registration;
* ``least_load`` and ``p2c``: *throughput per unit of load*, ``rps / load``.
  With load = tasks in flight per worker, Little's law makes this
  ``workers / latency``: a backend twice as fast gets twice the share, and a
  backend whose queue grows (load rising faster than its rps) loses share.
  Shares in proportion to ``workers / latency`` leave every backend with the
  same tasks in flight per worker — the balanced state ``least_load`` aims for,
  reached with weights a client applies without asking the LB;
* ``weighted_round_robin``: the weight gRFC A58 computes from the report,
  ``qps / (utilization + eps / qps * penalty)``
  (:func:`~lookaside.policies.weighted_round_robin.reported_weight`).

The load-aware figures are smoothed (an exponential moving average over
``XdsConfig.smoothing`` seconds of report time), backends without a figure yet
get the mean of those with one (as A58 does), everything is bounded to
``[mean / max_ratio, mean * max_ratio]``, multiplied by the static weight and
scaled so the heaviest gets ``XdsConfig.resolution``. With fewer than two
figures every backend falls back to ``capacity * static weight``.

Damping (:func:`worth_pushing`): a new set is pushed when membership changed,
or when some backend's share of the total moved by more than ``threshold`` of
its old share; the publisher adds the minimum gap between two weight pushes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from lookaside.lb.xds.config import XdsConfig
from lookaside.model import Endpoint
from lookaside.policies.weighted_round_robin import WrrConfig, reported_weight

#: Policies whose xDS weights come from load reports.
LOAD_AWARE = frozenset({"least_load", "p2c"})
#: Policies whose xDS weights are A58's, from the ORCA-shaped report.
A58 = frozenset({"weighted_round_robin"})
#: Policies whose xDS weights are the static registration weight.
STATIC = frozenset({"ring_hash"})

#: A58's error penalty: the same default the LB's own weighted_round_robin uses.
_A58_PENALTY = WrrConfig().error_utilization_penalty

#: Load below this counts as this much, so an idle moment does not make a weight infinite.
LOAD_FLOOR = 0.05


@dataclass(slots=True)
class _Smoothed:
    """One backend's smoothed figure; restarts when the backend (re)registers."""

    registered_at: float
    reported_at: float = -math.inf
    value: float = 0.0
    known: bool = False


def _signal(policy: str, endpoint: Endpoint) -> float:
    """The raw per-report figure for a load-aware policy; 0 when the report says nothing."""
    if policy in A58:
        return reported_weight(endpoint, _A58_PENALTY)
    rps = endpoint.metrics.rps_fractional
    if rps <= 0:
        return 0.0
    return rps / max(endpoint.load, LOAD_FLOOR)


class WeightEstimator:
    """Per service: the smoothed figures of its backends and the integer weights from them."""

    def __init__(self, config: XdsConfig) -> None:
        self.config = config
        self._figures: dict[str, _Smoothed] = {}

    def _observe(self, policy: str, endpoints: tuple[Endpoint, ...]) -> None:
        """Fold each backend's newest report into its average (once per report)."""
        figures: dict[str, _Smoothed] = {}
        for endpoint in endpoints:
            figure = self._figures.get(endpoint.id)
            if figure is None or figure.registered_at != endpoint.registered_at:
                figure = _Smoothed(endpoint.registered_at)
            if endpoint.reported_at >= figure.reported_at and endpoint.reported_at > 0:
                sample = _signal(policy, endpoint)
                if sample > 0:
                    self._fold(figure, sample, endpoint.reported_at)
                figure.reported_at = endpoint.reported_at
            figures[endpoint.id] = figure
        self._figures = figures  # backends that left are forgotten

    def _fold(self, figure: _Smoothed, sample: float, at: float) -> None:
        if not figure.known or self.config.smoothing <= 0:
            figure.value, figure.known = sample, True
            return
        alpha = 1.0 - math.exp(-max(at - figure.reported_at, 0.0) / self.config.smoothing)
        figure.value += alpha * (sample - figure.value)

    def weights(self, policy: str, endpoints: tuple[Endpoint, ...]) -> dict[str, int]:
        """Integer weight (>= 1) per backend id, for the service's policy."""
        if policy in LOAD_AWARE or policy in A58:
            self._observe(policy, endpoints)
            raw = self._load_aware(endpoints)
        elif policy in STATIC:
            raw = [_static(e) for e in endpoints]
        else:
            raw = [1.0] * len(endpoints)
        return dict(zip((e.id for e in endpoints), to_integers(raw, self.config), strict=True))

    def _load_aware(self, endpoints: tuple[Endpoint, ...]) -> list[float]:
        figures = [self._figures[e.id] for e in endpoints]
        known = [f.value for f in figures if f.known]
        if len(known) < 2:
            return [max(e.capacity, 1) * _static(e) for e in endpoints]
        mean = sum(known) / len(known)
        low, high = mean / self.config.max_ratio, mean * self.config.max_ratio
        return [
            (min(max(f.value, low), high) if f.known else mean) * _static(e)
            for f, e in zip(figures, endpoints, strict=True)
        ]


def _static(endpoint: Endpoint) -> float:
    return endpoint.weight if endpoint.weight > 0 else 1.0  # 0 means "not given"


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
