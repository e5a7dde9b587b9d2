"""The store seam: where membership is written, and what feeds the local view.

The servicer writes through a :class:`Store` (register, report, deregister,
mark down, expire) and reads from the :class:`~lookaside.lb.registry.InMemoryRegistry`
view it feeds; picks never wait on a store. Two stores exist: the in-memory
one (a lone LB, the default) and etcd (several LB replicas sharing one
membership).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from lookaside.errors import ServiceError
from lookaside.lb.ownership import Lease
from lookaside.lb.registry import InMemoryRegistry
from lookaside.model import Endpoint, LoadMetrics, Registration, ServingState


class StoreUnavailable(ServiceError):
    """The shared store did not answer: nothing was written; retrying may work."""

    status = "UNAVAILABLE"


class Store(Protocol):
    """Membership writes. ``register`` and ``deregister`` are durable once they return."""

    view: InMemoryRegistry
    #: Told the operation (``call``, ``watch``) each time the store does not answer;
    #: the LB points it at ``lookaside_store_errors_total``.
    on_error: Callable[[str], None]
    #: Told (backend id, caller IP, lease verifier) of each lease the store holds, as
    #: records arrive; the servicer points it at ``Owners.adopt``, so every replica
    #: enforces the lease another one granted.
    on_lease: Callable[[str, str, str], None]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def register(self, registration: Registration, lease: Lease | None = None) -> bool: ...
    async def deregister(self, backend_id: str) -> Endpoint: ...
    def report(
        self, backend_id: str, load: float, metrics: LoadMetrics, state: ServingState = ...
    ) -> Endpoint: ...
    def mark_down(self, backend_id: str) -> Endpoint | None: ...
    def expire(self) -> list[Endpoint]: ...
    def describe(self) -> str: ...


def ignore_error(operation: str) -> None:
    """The default ``on_error``: a store nobody observes."""


def ignore_lease(backend_id: str, caller: str, verifier: str) -> None:
    """The default ``on_lease``: nobody enforces leases (a store used on its own)."""
