"""Latency-policy signals shared by ``prequal`` and ``peak_ewma``.

* **Requests in flight** (Prequal's RIF): what the backend last reported
  (``LoadReport.requests_in_flight``, else its load x capacity, which is the
  same count for a backend that only reports load) plus the picks handed out
  since that report, so picks between two reports spread out exactly as
  :func:`~lookaside.policies.base.effective_load` makes them for ``least_load``.
* **Silence**: how long a backend has left picks unanswered. A backend that is
  picked reports within its minimum report gap (50 ms) because its queue
  changed; one under a GC pause, SIGSTOP or a throttled CPU sends nothing. So
  the time since the first pick after its latest report is a lower bound on
  the latency those picks see. Beyond a grace period it counts as latency,
  which makes a stalled backend look slow within ~100 ms, long before any
  report or lease could say so.
"""

from __future__ import annotations

from lookaside.model import Endpoint
from lookaside.policies.base import PickTracker

#: Silence shorter than this is a normal report gap, not latency (2 x the 50 ms minimum gap).
DEFAULT_SILENCE_GRACE = 0.1


def in_flight(endpoint: Endpoint, tracker: PickTracker) -> float:
    """Reported requests in flight plus the picks handed out since that report."""
    reported = endpoint.metrics.requests_in_flight
    base = float(reported) if reported > 0 else endpoint.load * endpoint.capacity
    return base + tracker.outstanding(endpoint.id)


def expected_latency_ms(endpoint: Endpoint, tracker: PickTracker) -> float:
    """The reported latency, raised by a share of it for every pick handed out since.

    The report's figure is for a call arriving when it was sent; each pick since
    queues one more call, which delays later ones by about a call's time spread
    over the backend's workers: ``latency x (1 + picks since / capacity)``. It is
    to latency what counting picks since the report is to load and RIF.
    """
    outstanding = tracker.outstanding(endpoint.id)
    return endpoint.metrics.latency_ms * (1.0 + outstanding / endpoint.capacity)


class Silence:
    """When each backend was first picked after its latest report (one per policy)."""

    __slots__ = ("_first_pick", "grace")

    def __init__(self, grace: float = DEFAULT_SILENCE_GRACE) -> None:
        if grace < 0:
            raise ValueError("silence grace must not be negative")
        self.grace = grace
        self._first_pick: dict[str, tuple[float, float]] = {}  # id -> (reported_at, picked at)

    def picked(self, endpoint: Endpoint, tracker: PickTracker, now: float) -> None:
        """Call before ``tracker.record``: starts the clock on the first pick since a report."""
        known = self._first_pick.get(endpoint.id)
        if (
            known is None
            or known[0] != endpoint.reported_at
            or not tracker.outstanding(endpoint.id)
        ):
            self._first_pick[endpoint.id] = (endpoint.reported_at, now)

    def silent_ms(self, endpoint: Endpoint, tracker: PickTracker, now: float) -> float:
        """Milliseconds its oldest unanswered pick has waited, when over the grace; else 0."""
        known = self._first_pick.get(endpoint.id)
        if (
            known is None
            or known[0] != endpoint.reported_at
            or not tracker.outstanding(endpoint.id)
        ):
            return 0.0
        waited = now - known[1]
        return waited * 1000.0 if waited > self.grace else 0.0

    def forget_others(self, live: set[str]) -> None:
        """Drop backends that left the service."""
        for gone in set(self._first_pick) - live:
            del self._first_pick[gone]
