"""The in-memory store: the view is the whole truth, so every write is local and at once."""

from __future__ import annotations

from collections.abc import Callable

from lookaside.lb.ownership import Lease
from lookaside.lb.registry import InMemoryRegistry
from lookaside.lb.store.base import ignore_error, ignore_lease
from lookaside.model import Endpoint, LoadMetrics, Registration, ServingState


class MemoryStore:
    """A lone LB's store (``--store memory``): nothing shared, nothing to reconcile."""

    def __init__(self, view: InMemoryRegistry) -> None:
        self.view = view
        self.on_error: Callable[[str], None] = ignore_error  # an in-memory store always answers
        self.on_lease: Callable[[str, str, str], None] = ignore_lease  # the servicer has them all

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def register(self, registration: Registration, lease: Lease | None = None) -> bool:
        return self.view.register(registration)

    async def deregister(self, backend_id: str) -> Endpoint:
        return self.view.deregister(backend_id)

    def report(
        self,
        backend_id: str,
        load: float,
        metrics: LoadMetrics,
        state: ServingState = ServingState.SERVING,
    ) -> Endpoint:
        return self.view.report(backend_id, load, metrics, state)

    def mark_down(self, backend_id: str) -> Endpoint | None:
        return self.view.mark_down(backend_id)

    def expire(self) -> list[Endpoint]:
        return self.view.expire()

    def describe(self) -> str:
        return "memory"
