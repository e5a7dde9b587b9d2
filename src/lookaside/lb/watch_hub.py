"""Versions, change log and paced wake-ups of the fast path's ``WatchBackends``.

Every change the LB sees in what a service offers (a join, a leave, a load
report, an ejection or a return) bumps the service's *version* and records, per
backend, the version of its latest change. The log is one insertion-ordered
dict per service (a backend's entry moves to the end when it changes again), so
"which backends changed after version v" is a walk back from the end that stops
at the first older entry: O(changes), however large the fleet.

Subscribers are not woken by each change but by *publications*: the hub
publishes the current version at once when nothing was published for
``min_gap`` seconds, else when that time is up. A thousand reports a second
therefore cost each subscriber about ``1 / min_gap`` messages, and every
subscriber that is caught up receives the same message (same base, same
version), which :mod:`lookaside.lb.watch_sets` builds once for all of them.

The log keeps at most ``max_log`` entries; the oldest go first (backends that
left long ago, or have not changed for long) and the hub remembers the newest
version it dropped. A subscriber whose last version is older than that cannot
be given a delta and gets the whole set again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_MIN_GAP = 0.2
#: Entries of the change log kept per service; well above any one service's fleet.
DEFAULT_MAX_LOG = 65536


@dataclass(slots=True)
class _ServiceLog:
    version: int = 0
    published: int = 0
    published_at: float = float("-inf")
    pending: asyncio.TimerHandle | None = None
    #: backend id -> version of its latest change, oldest change first.
    changes: dict[str, int] = field(default_factory=dict)
    #: The newest version whose change was dropped from ``changes``.
    floor: int = 0
    wakeup: asyncio.Event | None = None


class WatchHub:
    def __init__(self, min_gap: float = DEFAULT_MIN_GAP, max_log: int = DEFAULT_MAX_LOG) -> None:
        if min_gap < 0:
            raise ValueError("min_gap must be >= 0")
        if max_log < 1:
            raise ValueError("max_log must be >= 1")
        self.min_gap = min_gap
        self._max_log = max_log
        self._services: dict[str, _ServiceLog] = {}

    def _log(self, service: str) -> _ServiceLog:
        log = self._services.get(service)
        if log is None:
            log = self._services[service] = _ServiceLog()
        return log

    def changed(self, service: str, backend_ids: Iterable[str] = ()) -> None:
        """What the service offers changed (for ``backend_ids``); O(1) per id."""
        log = self._log(service)
        log.version += 1
        changes = log.changes
        for backend_id in backend_ids:
            changes.pop(backend_id, None)
            changes[backend_id] = log.version
        while len(changes) > self._max_log:
            oldest = next(iter(changes))
            log.floor = changes.pop(oldest)
        self._schedule_publish(service, log)

    def _schedule_publish(self, service: str, log: _ServiceLog) -> None:
        if log.pending is not None:
            return  # a publication is due already; it will carry this change
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (plain unit tests): publish at once
            self._publish(log, 0.0)
            return
        wait = log.published_at + self.min_gap - loop.time()
        if wait <= 0:
            self._publish(log, loop.time())
        else:
            log.pending = loop.call_later(wait, self._publish_later, log, loop)

    def _publish_later(self, log: _ServiceLog, loop: asyncio.AbstractEventLoop) -> None:
        log.pending = None
        self._publish(log, loop.time())

    def _publish(self, log: _ServiceLog, now: float) -> None:
        log.published = log.version
        log.published_at = now
        if log.wakeup is not None:
            log.wakeup.set()
            log.wakeup = None

    def version(self, service: str) -> int:
        """The version of the latest change, published or not."""
        log = self._services.get(service)
        return log.version if log else 0

    def published(self, service: str) -> int:
        """The latest published version: what subscribers are sent."""
        log = self._services.get(service)
        return log.published if log else 0

    def changed_between(self, service: str, base: int, upto: int) -> list[str] | None:
        """Backends whose latest change is in ``(base, upto]``, oldest change first.

        None when the log no longer reaches back to ``base``: send the whole set.
        Changes after ``upto`` are left for the next publication.
        """
        log = self._services.get(service)
        if log is None:
            return [] if base == 0 else None
        if base < log.floor or base > log.version:
            return None
        found: list[str] = []
        for backend_id, version in reversed(log.changes.items()):
            if version <= base:
                break
            if version <= upto:
                found.append(backend_id)
        found.reverse()
        return found

    async def wait_past(self, service: str, seen: int) -> None:
        """Return once a version newer than ``seen`` has been published."""
        log = self._log(service)
        while log.published == seen:
            if log.wakeup is None:
                log.wakeup = asyncio.Event()
            await log.wakeup.wait()
