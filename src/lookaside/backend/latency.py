"""The latency a backend reports: what a call arriving *now* should expect.

Prequal (Wydrowski et al., NSDI '24, section 4) has each server estimate its
latency from recently finished queries that arrived at a requests-in-flight
(RIF) similar to the current one, so the estimate follows the queue at once
and an idle server never keeps a stale, high figure that would scare clients
away for good. Here: an exponentially weighted mean of arrival-to-reply
latency per RIF-at-arrival bucket; the estimate at RIF ``r`` is bucket ``r``'s
mean, else the nearest bucket with samples below ``r``, else above it.
"""

from __future__ import annotations

#: Weight of each new call in its bucket's mean (about the last five calls count).
SAMPLE_WEIGHT = 0.2
#: RIFs at or above this share the last bucket.
BUCKETS = 32


class LatencyByRif:
    """EWMA of call latency (seconds) per RIF at arrival; O(1) per call."""

    __slots__ = ("_means",)

    def __init__(self) -> None:
        self._means: list[float | None] = [None] * BUCKETS

    def record(self, rif_at_arrival: int, seconds: float) -> None:
        bucket = min(max(rif_at_arrival, 0), BUCKETS - 1)
        mean = self._means[bucket]
        self._means[bucket] = seconds if mean is None else mean + SAMPLE_WEIGHT * (seconds - mean)

    def estimate_ms(self, rif: int) -> float:
        """Expected latency of a call arriving at ``rif``, in ms; 0 while nothing finished."""
        start = min(max(rif, 0), BUCKETS - 1)
        for bucket in (*range(start, -1, -1), *range(start + 1, BUCKETS)):
            mean = self._means[bucket]
            if mean is not None:
                return float(mean * 1000.0)
        return 0.0
