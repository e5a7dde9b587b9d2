"""Figures for the churn scenario: how fast the LB noticed backends come and go.

The runner logs a :class:`ChurnEvent` when it SIGKILLs a backend and when a new
one is ready (registered); every request's pick time is taken as the moment the
LB answered, ``start + lb_ms``. A dead backend's *stale window* is how long after
its kill the LB still handed it out; a new backend's *first traffic* delay is how
long after it was ready the LB first handed it out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lookaside.bench.metrics import RequestRecord, natural_sorted


@dataclass(frozen=True, slots=True)
class ChurnEvent:
    """A backend killed or started, at ``time.perf_counter`` time ``at``."""

    kind: Literal["kill", "start"]
    backend_id: str
    at: float


@dataclass(frozen=True, slots=True)
class ChurnFigures:
    """Per-backend churn figures, in seconds; ``None`` where a new backend never got traffic."""

    kills: int
    starts: int
    errors: int
    stale_picks: dict[str, int]
    stale_window_s: dict[str, float]
    first_traffic_s: dict[str, float | None]

    @property
    def max_stale_window_s(self) -> float:
        return max(self.stale_window_s.values(), default=0.0)

    @property
    def max_first_traffic_s(self) -> float:
        """The slowest new backend: NaN if none started, inf if one never got traffic."""
        delays = list(self.first_traffic_s.values())
        if not delays:
            return math.nan
        if any(d is None for d in delays):
            return math.inf
        return max(d for d in delays if d is not None)

    @property
    def starved(self) -> int:
        """New backends that never received a request."""
        return sum(1 for d in self.first_traffic_s.values() if d is None)

    def to_dict(self) -> dict[str, object]:
        return {
            "kills": self.kills,
            "starts": self.starts,
            "errors": self.errors,
            "stale_picks": dict(self.stale_picks),
            "stale_window_s": dict(self.stale_window_s),
            "first_traffic_s": dict(self.first_traffic_s),
            "max_stale_window_s": self.max_stale_window_s,
            "max_first_traffic_s": self.max_first_traffic_s,
            "starved": self.starved,
        }


def pick_time(record: RequestRecord) -> float:
    """When the LB named the backend: the request's start plus its LB query time."""
    return record.start + record.lb_ms / 1000.0


def _next_event(events: Sequence[ChurnEvent], after: ChurnEvent) -> float:
    """When the same backend id next changes state (a restart reusing its id), else +inf."""
    later = [e.at for e in events if e.backend_id == after.backend_id and e.at > after.at]
    return min(later, default=math.inf)


def churn_figures(records: Sequence[RequestRecord], events: Sequence[ChurnEvent]) -> ChurnFigures:
    stale_picks: dict[str, int] = {}
    stale_window: dict[str, float] = {}
    first_traffic: dict[str, float | None] = {}
    for event in sorted(events, key=lambda e: e.at):
        until = _next_event(events, event)
        picks = [
            pick_time(r)
            for r in records
            if r.backend_id == event.backend_id and event.at <= pick_time(r) < until
        ]
        if event.kind == "kill":
            stale_picks[event.backend_id] = stale_picks.get(event.backend_id, 0) + len(picks)
            window = max(picks) - event.at if picks else 0.0
            stale_window[event.backend_id] = max(window, stale_window.get(event.backend_id, 0.0))
        else:
            first_traffic[event.backend_id] = min(picks) - event.at if picks else None
    return ChurnFigures(
        kills=sum(1 for e in events if e.kind == "kill"),
        starts=sum(1 for e in events if e.kind == "start"),
        errors=sum(1 for r in records if not r.ok),
        stale_picks={k: stale_picks[k] for k in natural_sorted(stale_picks)},
        stale_window_s={k: stale_window[k] for k in natural_sorted(stale_window)},
        first_traffic_s={k: first_traffic[k] for k in natural_sorted(first_traffic)},
    )
