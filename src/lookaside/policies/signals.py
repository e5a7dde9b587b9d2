"""Latency-policy signals shared by ``prequal`` and ``peak_ewma``.

A look-aside LB hands out every pick itself, so between two reports it knows
more than the last report says. What both policies read at pick time:

* **Requests in flight** (Prequal's RIF): what the backend last reported
  (``LoadReport.requests_in_flight``, else its load x capacity, which is the
  same count for a backend that only reports load) plus the picks handed out
  since that report, plus the picks the report may not include yet (*in
  transit*, below), so picks between two reports spread out exactly as
  :func:`~lookaside.policies.base.effective_load` makes them for ``least_load``.
* **Service time**: the report's ``latency_ms`` is the backend's estimate for a
  call arriving at the RIF it reported (see :mod:`lookaside.backend.latency`);
  divided by that RIF's queueing factor it is one call's time there.
* **Expected latency** of a new call at the live RIF ``r`` on ``capacity``
  workers: ``service x max(1, (r + 1) / capacity)`` — no wait while a worker
  is free, then a share of a call's time for every call ahead of it. So the
  picks the LB hands out raise a backend's latency the moment they are made,
  not 50 ms later when it reports.
* **Silence**: how long a backend has left picks unanswered. A backend that is
  picked reports within its minimum report gap (50 ms) because its queue
  changed; one under a GC pause, SIGSTOP or a throttled CPU sends nothing. So
  the time since the first pick after its latest report is a lower bound on
  the latency those picks see. Once that report is overdue by more than a
  grace period (plus the lateness reports usually have on their way to this
  picker, learned) it counts as latency, which makes a stalled backend look
  slow within 30-80 ms, long before any report or lease could say so; its
  next report ends it at once.
* **Picks in transit**: a report counts the calls that had *reached* the
  backend; a pick handed out a moment before it was still on its way (the
  client has to receive the answer and send the call). Picks made within
  ``transit`` before a report are counted on top of it, so a burst of picks
  does not flow back to a backend whose report has just reset its count. The
  first report after a silence counts *all* the picks made during it: a
  backend resuming from a pause reports before it has read the calls that
  waited in its sockets.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

from lookaside.model import Endpoint
from lookaside.policies.base import PickTracker

#: Backends report a change at most this often (``lookaside backend --report-min-gap``).
DEFAULT_REPORT_GAP = 0.05
#: A report this late is not scheduling noise: the backend is silent.
DEFAULT_SILENCE_GRACE = 0.03
#: A pick reaches its backend about a client round trip after it is made; picks made
#: this long before a report are taken as not yet counted in it.
DEFAULT_TRANSIT = 0.02
#: Pick times kept per backend (for the in-transit count).
_KEPT = 16
#: How late recent reports answering a pick came (kept, needed before use, quantile used).
_LATENESS_KEPT = 32
_LATENESS_BEFORE_LEARNING = 8
_LATENESS_QUANTILE = 0.9


def reported_in_flight(endpoint: Endpoint) -> float:
    """The RIF of the latest report (its load x capacity for a backend without RIF)."""
    reported = endpoint.metrics.requests_in_flight
    return float(reported) if reported > 0 else endpoint.load * endpoint.capacity


def in_flight(endpoint: Endpoint, tracker: PickTracker, picks: PickTimes | None = None) -> float:
    """Reported requests in flight, plus picks handed out since and (``picks``) in transit."""
    transit = picks.in_transit(endpoint) if picks is not None else 0
    return reported_in_flight(endpoint) + tracker.outstanding(endpoint.id) + transit


def queue_factor(rif: float, capacity: int) -> float:
    """How many call times a call arriving at ``rif`` takes on ``capacity`` workers."""
    return max(1.0, (rif + 1.0) / capacity)


def service_ms(endpoint: Endpoint) -> float:
    """One call's time on the backend: its reported latency without the queue it had; 0 unknown."""
    latency = endpoint.metrics.latency_ms
    if latency <= 0:
        return 0.0
    return latency / queue_factor(reported_in_flight(endpoint), endpoint.capacity)


def typical_service_ms(endpoints: Iterable[Endpoint]) -> float:
    """The median known service time: what a backend that has not reported one is taken at."""
    known = sorted(s for s in map(service_ms, endpoints) if s > 0)
    return known[len(known) // 2] if known else 0.0


class PickTimes:
    """When each backend was picked: for its silence and for picks still in transit.

    One per policy. ``picked`` must be called before ``tracker.record``.
    """

    __slots__ = (
        "_first_pick",
        "_lateness",
        "_recent",
        "_reports",
        "_slack",
        "_transit_of",
        "grace",
        "report_gap",
        "transit",
    )  # fmt: skip

    def __init__(
        self,
        grace: float = DEFAULT_SILENCE_GRACE,
        transit: float = DEFAULT_TRANSIT,
        report_gap: float = DEFAULT_REPORT_GAP,
    ):
        if min(grace, transit, report_gap) < 0:
            raise ValueError("silence grace, transit time and report gap must not be negative")
        self.grace = grace
        self.transit = transit
        self.report_gap = report_gap
        self._first_pick: dict[str, tuple[float, float]] = {}  # id -> (reported_at, picked at)
        #: id -> (pick time, reported_at of the report it was made against), newest last.
        self._recent: dict[str, deque[tuple[float, float]]] = {}
        self._transit_of: dict[str, tuple[float, int]] = {}  # id -> (reported_at, count)
        self._reports: dict[str, tuple[float, float]] = {}  # id -> (previous, latest) times
        self._lateness: deque[float] = deque(maxlen=_LATENESS_KEPT)
        self._slack = 0.0  # learned from ``_lateness``

    def picked(self, endpoint: Endpoint, tracker: PickTracker, now: float) -> None:
        """Starts the silence clock on the first pick since a report; remembers the time."""
        known = self._first_pick.get(endpoint.id)
        if (
            known is None
            or known[0] != endpoint.reported_at
            or not tracker.outstanding(endpoint.id)
        ):
            self._first_pick[endpoint.id] = (endpoint.reported_at, now)
        recent = self._recent.setdefault(endpoint.id, deque(maxlen=_KEPT))
        recent.append((now, endpoint.reported_at))

    def saw(self, endpoints: Iterable[Endpoint]) -> None:
        """Note each backend's latest report time (the policy calls it on every build)."""
        reports = self._reports
        for endpoint in endpoints:
            known = reports.get(endpoint.id)
            if known is None or known[1] != endpoint.reported_at:
                reports[endpoint.id] = (known[1] if known else -math.inf, endpoint.reported_at)
                first = self._first_pick.get(endpoint.id)
                if known is not None and first is not None and first[0] == known[1]:
                    self._learn(endpoint.reported_at - self._due(first[1], known[1]))

    def _learn(self, lateness: float) -> None:
        """How late the report answering a pick came: silence starts beyond most of these.

        Where reports reach the picker later than backends send them (a
        fast-path client hears them through the LB's watch, 200 ms apart by
        default) that delay is normal, not silence. The slack is the
        ``_LATENESS_QUANTILE`` of the recent ones, so one stall among them is ignored.
        """
        recent = self._lateness
        recent.append(max(lateness, 0.0))
        if len(recent) >= _LATENESS_BEFORE_LEARNING:
            ordered = sorted(recent)
            self._slack = ordered[int(_LATENESS_QUANTILE * (len(ordered) - 1))]

    def in_transit(self, endpoint: Endpoint) -> int:
        """Picks its latest report probably does not include yet (once per report, cached)."""
        cached = self._transit_of.get(endpoint.id)
        reported = endpoint.reported_at
        if cached is not None and cached[0] == reported:
            return cached[1]
        recent = self._recent.get(endpoint.id)
        known = self._reports.get(endpoint.id)
        count = 0
        if recent and known is not None and known[1] == reported:
            previous = known[0]
            unseen = [at for at, against in recent if against == previous]
            late = self._due(unseen[0], previous) + self._slack + self.grace if unseen else 0.0
            if unseen and reported > late:
                count = len(unseen)  # it had been silent: none of them is in the report
            else:
                count = sum(1 for at in unseen if at > reported - self.transit)
        self._transit_of[endpoint.id] = (reported, count)
        return count

    def silent_ms(self, endpoint: Endpoint, tracker: PickTracker, now: float) -> float:
        """Milliseconds its oldest unanswered pick has waited, once the report it should
        have caused is over ``grace`` late; else 0.

        A healthy backend reports a pick's call at most a report gap after its
        previous report, and at once when that gap is already over; plus the
        lateness such reports usually have here (see :meth:`_learn`).
        """
        known = self._first_pick.get(endpoint.id)
        if (
            known is None
            or known[0] != endpoint.reported_at
            or not tracker.outstanding(endpoint.id)
        ):
            return 0.0
        due = self._due(known[1], endpoint.reported_at) + self._slack
        return (now - known[1]) * 1000.0 if now > due + self.grace else 0.0

    def _due(self, picked_at: float, reported_at: float) -> float:
        """When a healthy backend reports a call picked at ``picked_at``, at the latest."""
        return max(picked_at, reported_at + self.report_gap)

    def forget_others(self, live: set[str]) -> None:
        """Drop backends that left the service."""
        for table in (self._first_pick, self._recent, self._transit_of, self._reports):
            for gone in set(table) - live:
                del table[gone]
