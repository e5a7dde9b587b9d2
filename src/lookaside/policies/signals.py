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
* **Picks in transit**: a report counts the calls that had *reached* the
  backend; a pick handed out a moment before it was still on its way (the
  client has to receive the answer and send the call). Picks made within
  ``transit`` before a report are counted on top of it, so a burst of picks
  does not flow back to a backend whose report has just reset its count.
"""

from __future__ import annotations

from collections import deque

from lookaside.model import Endpoint
from lookaside.policies.base import PickTracker

#: Silence shorter than this is a normal report gap, not latency (2 x the 50 ms minimum gap).
DEFAULT_SILENCE_GRACE = 0.1
#: A pick reaches its backend about a client round trip after it is made; picks made
#: this long before a report are taken as not yet counted in it.
DEFAULT_TRANSIT = 0.02
#: Pick times kept per backend (for the in-transit count).
_KEPT = 16


def in_flight(endpoint: Endpoint, tracker: PickTracker, picks: PickTimes | None = None) -> float:
    """Reported requests in flight, plus picks handed out since and (``picks``) in transit."""
    reported = endpoint.metrics.requests_in_flight
    base = float(reported) if reported > 0 else endpoint.load * endpoint.capacity
    transit = picks.in_transit(endpoint) if picks is not None else 0
    return base + tracker.outstanding(endpoint.id) + transit


def expected_latency_ms(endpoint: Endpoint, tracker: PickTracker) -> float:
    """The reported latency, raised by a share of it for every pick handed out since.

    The report's figure is for a call arriving when it was sent; each pick since
    queues one more call, which delays later ones by about a call's time spread
    over the backend's workers: ``latency x (1 + picks since / capacity)``. It is
    to latency what counting picks since the report is to load and RIF.
    """
    outstanding = tracker.outstanding(endpoint.id)
    return endpoint.metrics.latency_ms * (1.0 + outstanding / endpoint.capacity)


class PickTimes:
    """When each backend was picked: for its silence and for picks still in transit.

    One per policy. ``picked`` must be called before ``tracker.record``.
    """

    __slots__ = ("_first_pick", "_recent", "grace", "transit")

    def __init__(self, grace: float = DEFAULT_SILENCE_GRACE, transit: float = DEFAULT_TRANSIT):
        if grace < 0 or transit < 0:
            raise ValueError("silence grace and transit time must not be negative")
        self.grace = grace
        self.transit = transit
        self._first_pick: dict[str, tuple[float, float]] = {}  # id -> (reported_at, picked at)
        self._recent: dict[str, deque[float]] = {}

    def picked(self, endpoint: Endpoint, tracker: PickTracker, now: float) -> None:
        """Starts the silence clock on the first pick since a report; remembers the time."""
        known = self._first_pick.get(endpoint.id)
        if (
            known is None
            or known[0] != endpoint.reported_at
            or not tracker.outstanding(endpoint.id)
        ):
            self._first_pick[endpoint.id] = (endpoint.reported_at, now)
        if self.transit > 0:
            self._recent.setdefault(endpoint.id, deque(maxlen=_KEPT)).append(now)

    def in_transit(self, endpoint: Endpoint) -> int:
        """Picks made within ``transit`` before its latest report: probably not in it yet."""
        recent = self._recent.get(endpoint.id)
        if not recent:
            return 0
        reported = endpoint.reported_at
        return sum(1 for at in recent if reported - self.transit < at <= reported)

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
        for gone in set(self._recent) - live:
            del self._recent[gone]
