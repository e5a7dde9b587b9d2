"""Following a server's own ``grpc.health.v1`` state, in the process that serves it.

The agent either installs a stock ``grpc_health`` servicer (aio or blocking, to
match the server) or is handed the one the server already has. Either way it
wraps that servicer's public ``set()``, so every status the application sets
reaches the agent at once, from whichever thread set it, and the servicer
keeps answering ``Check``/``Watch`` exactly as before.

The backend counts as serving while neither the whole server (``""``) nor the
service it registered is set to anything but SERVING; a stock servicer starts
with ``""`` SERVING.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Collection
from typing import Any

from grpc_health.v1 import health, health_pb2

SERVING = health_pb2.HealthCheckResponse.SERVING

#: A grpc_health.v1.health HealthServicer, blocking or aio (loosely typed upstream).
HealthServicer = Any


def new_servicer(aio: bool) -> HealthServicer:
    return health.aio.HealthServicer() if aio else health.HealthServicer()  # type: ignore[attr-defined]


class HealthFollower:
    """Calls ``on_change(serving)`` whenever the followed statuses flip."""

    def __init__(
        self,
        servicer: HealthServicer,
        services: Collection[str],
        on_change: Callable[[bool], None],
    ) -> None:
        self.servicer = servicer
        self._services = frozenset({"", *services})
        self._on_change = on_change
        self._lock = threading.Lock()
        self._statuses: dict[str, int] = {}
        self.serving = True
        original = servicer.set
        if inspect.iscoroutinefunction(original):

            async def set_async(service: str, status: int) -> None:
                await original(service, status)
                self._record(service, status)

            servicer.set = set_async
        else:

            def set_sync(service: str, status: int) -> None:
                original(service, status)
                self._record(service, status)

            servicer.set = set_sync

    def _record(self, service: str, status: int) -> None:
        if service not in self._services:
            return
        with self._lock:
            self._statuses[service] = status
            serving = all(value == SERVING for value in self._statuses.values())
            changed, self.serving = serving != self.serving, serving
        if changed:
            self._on_change(serving)
