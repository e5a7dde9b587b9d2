"""Every default of the xDS control plane, in one place (the CLI reads them from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class XdsConfig:
    """How the LB turns its live view into xDS resources and when it pushes them."""

    #: Least seconds between two weight-only pushes for one service. Membership
    #: changes (join, leave, ejection) are pushed at once, whatever the gap, but
    #: a burst of them is evaluated once per gap (see ``publisher``).
    min_gap: float = 0.5
    #: A weight-only change is pushed when some backend's share of the weight
    #: moved by more than this fraction of its old share (0.1 = 10 %).
    threshold: float = 0.1
    #: Seconds over which load figures are smoothed (exponential moving average)
    #: before they become weights, so one burst does not swing the weights.
    smoothing: float = 1.0
    #: least_load / p2c: seconds over which each backend's calls/s and busy share
    #: are smoothed into its service rate, which sets its weight (see ``weights``);
    #: shorter while the backend has served for less time than this.
    rate_smoothing: float = 10.0
    #: least_load / p2c: a backend queueing (load above one task per worker and
    #: above the mean) gets ``(mean / load) ** queue_gain`` of its weight; 0: never.
    queue_gain: float = 0.5
    #: least_load / p2c while backends report no rate: seconds for weights to move
    #: e-fold towards equal load. Longer than ``smoothing``, so the controller does
    #: not chase its own lag.
    adapt_period: float = 2.0
    #: The largest integer weight handed out; the others are scaled to it (>= 1).
    resolution: int = 100
    #: No backend's weight goes below mean / max_ratio or above mean * max_ratio.
    max_ratio: float = 10.0
    #: Clusters carry ``lrs_server: self``: stock clients report per-backend call
    #: counts (Load Reporting Service), which feed outlier ejection.
    load_reporting: bool = True

    def __post_init__(self) -> None:
        if self.min_gap < 0:
            raise ValueError("xDS min gap must be >= 0 seconds")
        if not 0 <= self.threshold < 1:
            raise ValueError("xDS threshold must be in [0, 1)")
        if self.smoothing < 0:
            raise ValueError("xDS smoothing must be >= 0 seconds")
        if self.rate_smoothing < 0:
            raise ValueError("xDS rate smoothing must be >= 0 seconds")
        if self.queue_gain < 0:
            raise ValueError("xDS queue gain must be >= 0")
        if self.adapt_period <= 0:
            raise ValueError("xDS adapt period must be > 0 seconds")
        if self.resolution < 1:
            raise ValueError("xDS weight resolution must be >= 1")
        if self.max_ratio < 1:
            raise ValueError("xDS max weight ratio must be >= 1")
