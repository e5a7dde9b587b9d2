"""Tells fast-path watchers when a service's set of live backends changed.

Every change the LB sees (a join, a leave, a load report, an ejection) bumps
the service's version and wakes whoever waits on it. Watchers then send the
whole current set, at most once per ``min_gap`` seconds, so a thousand load
reports a second cost each watcher a handful of messages, not a thousand.
"""

from __future__ import annotations

import asyncio

DEFAULT_MIN_GAP = 0.2


class WatchHub:
    def __init__(self, min_gap: float = DEFAULT_MIN_GAP) -> None:
        if min_gap < 0:
            raise ValueError("min_gap must be >= 0")
        self.min_gap = min_gap
        self._versions: dict[str, int] = {}
        self._wakeups: dict[str, asyncio.Event] = {}

    def changed(self, service: str) -> None:
        self._versions[service] = self._versions.get(service, 0) + 1
        wakeup = self._wakeups.pop(service, None)
        if wakeup is not None:
            wakeup.set()

    def version(self, service: str) -> int:
        return self._versions.get(service, 0)

    async def wait_past(self, service: str, seen: int) -> None:
        """Return once the service's version is no longer ``seen``."""
        while self.version(service) == seen:
            await self._wakeups.setdefault(service, asyncio.Event()).wait()
