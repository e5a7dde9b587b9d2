"""Outlier detection: eject backends that clients see failing, for a while.

In the spirit of Envoy's outlier detection and gRPC's (gRFC A50), fed by the
per-backend ``(finished, failed)`` counts clients send in ``ClientStats``
(grpclb's client-load-reporting idea). Two detectors, Envoy's defaults:

* **consecutive failures** (``consecutive_failures``, 5): reports only carry
  counts, so "consecutive" means failures with no success in between *as far as
  the reports show*: a report in which every call failed adds its failures to the
  run; a report with any success ends it. Checked on every report, so a backend
  that fails everything is ejected within one report interval.
* **success rate** (every ``interval``, 10 s): among the service's backends with
  at least ``success_rate_request_volume`` (100) calls in the interval, if there
  are at least ``success_rate_minimum_hosts`` (5), eject those whose success rate
  is below ``mean - success_rate_stdev_factor * stdev`` (factor 1.9).

An ejection lasts ``base_ejection_time`` (30 s) times the number of times the
backend has been ejected, capped at ``max(base_ejection_time, max_ejection_time)``
(300 s); each interval the backend is not ejected lowers that multiplier by one
(A50). Ejected backends return when their time is up (:meth:`sweep`).

Max ejection: at most ``max_ejection_percent`` (10 %) of a service's backends
are ejected at once, rounded down but at least one, and never all of them: a
service with one backend never ejects it, a service with 2..10 may eject one.
Envoy also ejects "at least one regardless"; unlike Envoy (which then falls into
panic routing) we never eject the last backend, because an LB that answers
"no backend" helps nobody while a failing backend may still serve some calls.

Pure Python with an injected clock; no gRPC, no I/O. Logs one INFO line per
ejection and per return.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutlierConfig:
    """Outlier detection parameters; defaults are Envoy's."""

    #: Seconds between success-rate analyses (Envoy ``interval``: 10 s).
    interval: float = 10.0
    #: Failures in a row that eject a backend; 0 turns this detector off (Envoy: 5).
    consecutive_failures: int = 5
    #: First ejection length; the n-th ejection lasts n times this (Envoy: 30 s).
    base_ejection_time: float = 30.0
    #: Longest ejection, unless ``base_ejection_time`` is longer (Envoy: 300 s).
    max_ejection_time: float = 300.0
    #: Share of a service's backends that may be ejected at once (Envoy: 10 %).
    max_ejection_percent: float = 10.0
    #: Success-rate threshold is ``mean - factor * stdev`` (Envoy: 1900 / 1000).
    success_rate_stdev_factor: float = 1.9
    #: Backends with enough volume needed before success rate is judged (Envoy: 5).
    success_rate_minimum_hosts: int = 5
    #: Calls in the interval for a backend to count in success rate (Envoy: 100).
    success_rate_request_volume: int = 100
    #: False turns the success-rate detector off.
    success_rate_enabled: bool = True

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.consecutive_failures < 0:
            raise ValueError("consecutive_failures must not be negative")
        if self.base_ejection_time <= 0 or self.max_ejection_time <= 0:
            raise ValueError("ejection times must be positive")
        if not 0 <= self.max_ejection_percent <= 100:
            raise ValueError("max_ejection_percent must be within 0..100")
        if self.success_rate_stdev_factor < 0:
            raise ValueError("success_rate_stdev_factor must not be negative")
        if self.success_rate_minimum_hosts < 1 or self.success_rate_request_volume < 1:
            raise ValueError("success-rate minimums must be at least 1")


class OutlierEventKind(Enum):
    EJECTED = "ejected"
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class OutlierEvent:
    service: str
    backend_id: str
    kind: OutlierEventKind
    reason: str  # "consecutive_failures", "success_rate" or "ejection_time_elapsed"
    duration: float = 0.0  # seconds of the ejection (EJECTED only)


@dataclass(slots=True)
class _Host:
    finished: int = 0  # in the current interval
    failed: int = 0
    consecutive_failures: int = 0
    multiplier: int = 0  # ejections not yet forgiven
    ejected_until: float | None = None


class OutlierDetector:
    """Per-service outlier state. Tell it who is a member; feed it client stats."""

    def __init__(
        self,
        config: OutlierConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or OutlierConfig()
        self._clock = clock
        self._services: dict[str, dict[str, _Host]] = {}
        #: service -> ids ejected now; dropped on every ejection, return or leave, so
        #: :meth:`ejected` (asked after every load report) costs O(n) once per change.
        self._ejected: dict[str, frozenset[str]] = {}
        self._next_analysis = clock() + self.config.interval

    # Membership: follows the registry (JOINED / LEFT).

    def add(self, service: str, backend_id: str) -> None:
        """A backend joined; idempotent."""
        self._services.setdefault(service, {}).setdefault(backend_id, _Host())

    def forget(self, service: str, backend_id: str) -> None:
        """A backend left: drop its state (ejected or not); it starts afresh if it rejoins."""
        hosts = self._services.get(service)
        if hosts is None:
            return
        host = hosts.pop(backend_id, None)
        if host is not None and host.ejected_until is not None:
            self._ejected.pop(service, None)
        if not hosts:
            del self._services[service]

    # Queries.

    def ejected(self, service: str) -> frozenset[str]:
        """Ids of the service's currently ejected backends."""
        found = self._ejected.get(service)
        if found is None:
            hosts = self._services.get(service, {})
            found = frozenset(i for i, h in hosts.items() if h.ejected_until is not None)
            self._ejected[service] = found
        return found

    def is_ejected(self, service: str, backend_id: str) -> bool:
        host = self._services.get(service, {}).get(backend_id)
        return host is not None and host.ejected_until is not None

    # Input.

    def record(
        self, service: str, backend_id: str, finished: int, failed: int
    ) -> OutlierEvent | None:
        """Add one client's counts for one backend; the ejection it caused, if any.

        Counts for a backend that is not a member (it left; stale stats) are ignored.
        """
        host = self._services.get(service, {}).get(backend_id)
        if host is None or finished <= 0:
            return None
        failed = min(max(failed, 0), finished)
        host.finished += finished
        host.failed += failed
        if failed < finished:
            host.consecutive_failures = 0
            return None
        host.consecutive_failures += failed
        threshold = self.config.consecutive_failures
        if threshold and host.consecutive_failures >= threshold and host.ejected_until is None:
            return self._eject(service, backend_id, "consecutive_failures")
        return None

    # Time.

    def sweep(self) -> list[OutlierEvent]:
        """Return backends whose time is up; every ``interval``, judge success rates.

        Call it about once a second (with the registry's lease expiry, say).
        """
        now = self._clock()
        events: list[OutlierEvent] = []
        if now >= self._next_analysis:
            self._next_analysis = now + self.config.interval
            for service in list(self._services):
                events.extend(self._analyse(service))
        # Analyse before returning backends, as A50 does, so the sweep that returns a
        # backend does not also lower its multiplier.
        # Only the ejected are looked at (a cached set), so a sweep is O(ejected), not O(n).
        for service, hosts in self._services.items():
            for backend_id in self.ejected(service):
                host = hosts[backend_id]
                if host.ejected_until is not None and now >= host.ejected_until:
                    host.ejected_until = None
                    host.consecutive_failures = 0
                    self._ejected.pop(service, None)
                    events.append(self._returned(service, backend_id))
        return events

    # Internals.

    def _analyse(self, service: str) -> list[OutlierEvent]:
        """One interval's success-rate pass, then the A50 multiplier decay and reset."""
        hosts = self._services[service]
        events: list[OutlierEvent] = []
        if self.config.success_rate_enabled:
            for backend_id in self._success_rate_outliers(hosts):
                event = self._eject(service, backend_id, "success_rate")
                if event is not None:
                    events.append(event)
        for host in hosts.values():
            if host.ejected_until is None and host.multiplier > 0:
                host.multiplier -= 1
            host.finished = host.failed = 0
        return events

    def _success_rate_outliers(self, hosts: dict[str, _Host]) -> list[str]:
        config = self.config
        rates = {
            backend_id: 1.0 - host.failed / host.finished
            for backend_id, host in hosts.items()
            if host.ejected_until is None and host.finished >= config.success_rate_request_volume
        }
        if len(rates) < config.success_rate_minimum_hosts:
            return []
        mean = sum(rates.values()) / len(rates)
        stdev = math.sqrt(sum((r - mean) ** 2 for r in rates.values()) / len(rates))
        threshold = mean - config.success_rate_stdev_factor * stdev
        # Worst first, so the max-ejection cap keeps the worst ones out.
        return sorted((i for i, r in rates.items() if r < threshold), key=rates.__getitem__)

    def max_ejected(self, members: int) -> int:
        """How many of ``members`` backends may be ejected at once (see the module doc)."""
        if members < 2 or self.config.max_ejection_percent <= 0:
            return 0
        allowed = max(1, math.floor(members * self.config.max_ejection_percent / 100))
        return min(allowed, members - 1)

    def _eject(self, service: str, backend_id: str, reason: str) -> OutlierEvent | None:
        hosts = self._services[service]
        host = hosts[backend_id]
        if host.ejected_until is not None:
            return None
        ejected_now = sum(1 for h in hosts.values() if h.ejected_until is not None)
        if ejected_now >= self.max_ejected(len(hosts)):
            log.debug(
                "outlier not ejected (max ejection reached) service=%s backend=%s reason=%s "
                "ejected=%d members=%d",
                service,
                backend_id,
                reason,
                ejected_now,
                len(hosts),
            )
            return None
        config = self.config
        host.multiplier += 1
        duration = min(
            config.base_ejection_time * host.multiplier,
            max(config.base_ejection_time, config.max_ejection_time),
        )
        host.ejected_until = self._clock() + duration
        self._ejected.pop(service, None)
        log.info(
            "outlier ejected service=%s backend=%s reason=%s duration=%.1fs times=%d "
            "finished=%d failed=%d",
            service,
            backend_id,
            reason,
            duration,
            host.multiplier,
            host.finished,
            host.failed,
        )
        return OutlierEvent(service, backend_id, OutlierEventKind.EJECTED, reason, duration)

    def _returned(self, service: str, backend_id: str) -> OutlierEvent:
        log.info("outlier returned service=%s backend=%s", service, backend_id)
        return OutlierEvent(service, backend_id, OutlierEventKind.RETURNED, "ejection_time_elapsed")
