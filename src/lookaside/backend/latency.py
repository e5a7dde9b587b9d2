"""The latency a backend reports: what a call arriving *now* should expect.

Prequal (Wydrowski et al., NSDI '24, section 4) has each server estimate its
latency from recently finished queries that arrived at a requests-in-flight
(RIF) similar to the current one, so the estimate follows the queue at once
and an idle server never keeps a stale, high figure that would scare clients
away for good. Here: per RIF-at-arrival bucket, the **median** of the last
:data:`SAMPLES` calls' arrival-to-reply latency; the estimate at RIF ``r`` is
bucket ``r``'s, else the nearest bucket with samples below ``r``, else above.

A median, not a mean, because of pauses: the calls caught in a stall (a GC
pause, SIGSTOP) finish hundreds of ms late, one per bucket. A mean would carry
that into every low-RIF bucket, the backend would look slow when idle, get no
calls, and so never correct it; the median ignores a stray sample and follows
a lasting change after half the window.
"""

from __future__ import annotations

from collections import deque

#: Calls kept per bucket; the estimate is their median.
SAMPLES = 5
#: RIFs at or above this share the last bucket.
BUCKETS = 32


class LatencyByRif:
    """Recent call latencies (seconds) per RIF at arrival; O(SAMPLES) per call."""

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: list[deque[float]] = [deque(maxlen=SAMPLES) for _ in range(BUCKETS)]

    def record(self, rif_at_arrival: int, seconds: float) -> None:
        self._samples[min(max(rif_at_arrival, 0), BUCKETS - 1)].append(seconds)

    def estimate_ms(self, rif: int) -> float:
        """Expected latency of a call arriving at ``rif``, in ms; 0 while nothing finished."""
        start = min(max(rif, 0), BUCKETS - 1)
        for bucket in (*range(start, -1, -1), *range(start + 1, BUCKETS)):
            samples = self._samples[bucket]
            if samples:
                ordered = sorted(samples)
                middle = len(ordered) // 2
                median = (
                    ordered[middle]
                    if len(ordered) % 2
                    else (ordered[middle - 1] + ordered[middle]) / 2
                )
                return float(median * 1000.0)
        return 0.0
