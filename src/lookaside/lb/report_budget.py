"""The report budget: the LB keeps its load-report ingestion under N reports a second.

A streamed report costs the LB about 150 µs of CPU however cheap its
processing is (gRPC's own work per message), so a large fleet reporting fast
can take a whole core. Two levers keep the total under ``budget`` reports/s:

* **Pace.** Every backend is told the least gap between two of its reports
  (``RegisterResponse.min_report_gap_seconds``) and the interval of its periodic
  reports: ``gap = max(base_gap, fleet / budget)``, ``interval = max(base, gap)``,
  both capped at a third of the lease TTL so that a backend that obeys always
  keeps its lease. When the fleet grows so much that what a backend was told is
  less than half the current gap (or shrinks so that it is more than four
  times), the LB ends that backend's ``StreamLoad`` with OK and the new pace; the
  backend renews its registration, which keeps its lease, and reopens the
  stream (backends that predate this re-register anyway when a stream ends).
* **Shedding, with coalescing.** A report beyond the budget (a token bucket of
  ``budget`` tokens a second) from a backend that reported less than ``gap``
  ago is not applied; it is kept as that backend's *pending* report, replacing
  any older one, and applied by :meth:`ReportBudget.due` once the gap is over,
  so the LB always ends up with each backend's latest figures, at most ``gap``
  plus one sweep late. A report whose backend has been applied for a gap or
  longer is always applied, so leases never lapse because of the budget.

Freshness where it matters: a report saying the backend is saturated (load at
or above :data:`SATURATED`) or the first one after it was saturated is never
shed: picks must stop (and resume) at once.

Pure Python with an injected clock; no gRPC.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

#: Default reports per second the LB ingests (about 75 % of a core at 150 µs each).
DEFAULT_REPORT_BUDGET = 5000.0
#: Default least gap between two reports of one backend when the budget does not bind.
DEFAULT_MIN_REPORT_GAP = 0.05
#: A load at or above this means every worker is busy: such reports are never shed.
SATURATED = 1.0
#: Obeying backends report once per gap; arrivals this much early still count as on time.
_EARLY_SLACK = 0.8
#: Renegotiate when what a backend was told is off by these factors.
_TOO_FAST, _TOO_SLOW = 0.5, 4.0


@dataclass(frozen=True, slots=True)
class Pace:
    """What a backend is told: its periodic interval and the least gap between reports."""

    interval: float
    min_gap: float


#: What a held-back report carries besides its load (the servicer's metrics and state).
T = TypeVar("T")


@dataclass(slots=True)
class _Backend(Generic[T]):
    told: Pace
    applied_at: float = -math.inf
    saturated: bool = False
    pending: tuple[float, T] | None = None


class ReportBudget(Generic[T]):
    def __init__(
        self,
        budget: float = DEFAULT_REPORT_BUDGET,
        base_interval: float = 1.0,
        base_gap: float = DEFAULT_MIN_REPORT_GAP,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``budget`` 0 turns the budget off (every report is applied; pace = the bases)."""
        if budget < 0 or base_interval <= 0 or base_gap < 0 or ttl <= 0:
            raise ValueError("budget, gap must be >= 0; interval and ttl > 0")
        self.budget = budget
        self._base = Pace(base_interval, min(base_gap, base_interval))
        self._ceiling = ttl / 3
        self._clock = clock
        self._backends: dict[str, _Backend[T]] = {}
        self._pending: dict[str, _Backend[T]] = {}  # the backends with a pending report
        self._tokens = budget
        self._refilled_at = clock()
        self._warned = False
        self.shed = 0  # reports shed so far (for logs and the bench)

    def pace(self) -> Pace:
        """The pace for the current fleet size."""
        fleet = len(self._backends)
        if self.budget <= 0 or fleet / self.budget <= self._base.min_gap:
            return self._base
        gap = fleet / self.budget
        if gap > self._ceiling:
            if not self._warned:
                self._warned = True
                log.warning(
                    "report budget %g/s cannot hold %d backends within a third of the lease "
                    "TTL; shedding the excess (raise --ttl or --report-budget)",
                    self.budget,
                    fleet,
                )
            gap = self._ceiling
        return Pace(max(self._base.interval, gap), gap)

    def told(self, backend_id: str) -> Pace:
        """A backend (re)registered: remember and return the pace it is told."""
        pace = self.pace()
        backend = self._backends.get(backend_id)
        if backend is None:
            self._backends[backend_id] = _Backend(pace)
            pace = self.pace()  # counting the newcomer
            self._backends[backend_id].told = pace
        else:
            backend.told = pace
        return pace

    def forget(self, backend_id: str) -> None:
        self._backends.pop(backend_id, None)
        self._pending.pop(backend_id, None)

    def stale_pace(self, backend_id: str) -> bool:
        """True when the backend's pace is off enough to end its stream and tell it anew."""
        backend = self._backends.get(backend_id)
        if backend is None or self.budget <= 0:
            return False
        told, now = backend.told.min_gap, self.pace().min_gap
        return told < now * _TOO_FAST or told > now * _TOO_SLOW

    def _take_token(self, now: float) -> bool:
        self._tokens = min(self.budget, self._tokens + (now - self._refilled_at) * self.budget)
        self._refilled_at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def admit(self, backend_id: str, load: float, rest: T, urgent: bool = False) -> bool:
        """Apply this report now (True), or keep it pending until its gap is over (False).

        ``urgent`` reports (a change of serving state, say) are never held back.
        """
        backend = self._backends.get(backend_id)
        now = self._clock()
        if self.budget <= 0 or backend is None:
            return True
        saturated = load >= SATURATED
        urgent = urgent or saturated or backend.saturated
        on_time = now - backend.applied_at >= _EARLY_SLACK * self.pace().min_gap
        if self._take_token(now) or urgent or on_time:
            backend.applied_at = now
            backend.saturated = saturated
            backend.pending = None
            self._pending.pop(backend_id, None)
            return True
        backend.pending = (load, rest)
        self._pending[backend_id] = backend
        self.shed += 1
        return False

    def due(self) -> list[tuple[str, float, T]]:
        """Pending reports whose gap is over, to apply now (call every sweep); O(pending)."""
        now = self._clock()
        gap = _EARLY_SLACK * self.pace().min_gap
        ready = []
        for backend_id, backend in list(self._pending.items()):
            if backend.pending is not None and now - backend.applied_at >= gap:
                load, rest = backend.pending
                ready.append((backend_id, load, rest))
                backend.pending = None
                backend.applied_at = now
                backend.saturated = load >= SATURATED
                del self._pending[backend_id]
        return ready
