"""Who is alive, per service: backend records, leases and latest load.

Pure Python with an injected clock, so leases are tested without sleeping.
Every method runs on the LB's event loop thread; there is no locking because
nothing here awaits.

Leases: a backend is alive while it keeps renewing (a load report, unary or
streamed, renews it). ``expire()`` evicts those whose lease ran out; the LB
calls it a few times per TTL. A broken load stream evicts at once
(``mark_down``). Ids are unique across the whole LB, so a ``LoadReport`` (which
carries only an id, as in the seed) is unambiguous.

The :class:`Registry` protocol is the seam for another store (etcd, for several
LB replicas); :class:`InMemoryRegistry` is the embedded default.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from lookaside.errors import AlreadyExists, NotFound, ResourceExhausted
from lookaside.model import Endpoint, LoadMetrics, Registration, ServingState

DEFAULT_TTL = 5.0
DEFAULT_MAX_BACKENDS = 1024


class Change(Enum):
    JOINED = "joined"
    LOAD = "load"
    STATE = "state"  # a report changed its serving state (and maybe its load)
    LEFT = "left"


#: Called after every change: (service, backend id, what changed).
Listener = Callable[[str, str, Change], None]


@dataclass(slots=True)
class _Record:
    endpoint: Endpoint
    expires_at: float


class Registry(Protocol):
    ttl: float

    def subscribe(self, listener: Listener) -> None: ...
    def register(self, registration: Registration) -> bool: ...
    def report(
        self,
        backend_id: str,
        load: float,
        metrics: LoadMetrics,
        state: ServingState = ServingState.SERVING,
    ) -> Endpoint: ...
    def deregister(self, backend_id: str) -> Endpoint: ...
    def mark_down(self, backend_id: str) -> Endpoint | None: ...
    def expire(self) -> list[Endpoint]: ...
    def get(self, backend_id: str) -> Endpoint | None: ...
    def endpoints(self, service: str) -> tuple[Endpoint, ...]: ...
    def services(self) -> list[str]: ...


class InMemoryRegistry:
    """The embedded registry."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_backends_per_service: int = DEFAULT_MAX_BACKENDS,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.ttl = ttl
        self._clock = clock
        self._max_backends = max_backends_per_service
        self._records: dict[str, _Record] = {}
        self._by_service: dict[str, dict[str, None]] = {}  # insertion-ordered id sets
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _notify(self, service: str, backend_id: str, change: Change) -> None:
        for listener in self._listeners:
            listener(service, backend_id, change)

    def register(self, registration: Registration) -> bool:
        """Add or renew a backend; True when it is new.

        Same id at the same address and service: idempotent renewal (position
        kept; capacity and weight updated). Same id elsewhere while its lease
        is alive: :class:`AlreadyExists`.
        """
        now = self._clock()
        existing = self._records.get(registration.id)
        if existing is not None:
            current = existing.endpoint
            same_place = (current.address, current.port, current.service) == (
                registration.address,
                registration.port,
                registration.service,
            )
            if not same_place:
                raise AlreadyExists(
                    f"backend id {registration.id!r} is held by {current.target} "
                    f"(service {current.service!r}) until its lease expires"
                )
            existing.endpoint = replace(
                current, capacity=registration.capacity, weight=registration.weight
            )
            existing.expires_at = now + self.ttl
            return False
        members = self._by_service.setdefault(registration.service, {})
        if len(members) >= self._max_backends:
            raise ResourceExhausted(
                f"service {registration.service!r} already has {len(members)} backends "
                f"(the limit is {self._max_backends})"
            )
        endpoint = Endpoint(
            id=registration.id,
            address=registration.address,
            port=registration.port,
            service=registration.service,
            capacity=registration.capacity,
            weight=registration.weight,
            load=registration.load,
            registered_at=now,
        )
        self._records[registration.id] = _Record(endpoint, now + self.ttl)
        members[registration.id] = None
        self._notify(registration.service, registration.id, Change.JOINED)
        return True

    def _record(self, backend_id: str) -> _Record:
        record = self._records.get(backend_id)
        if record is None:
            raise NotFound(f"backend {backend_id!r} is not registered; register it again")
        return record

    def report(
        self,
        backend_id: str,
        load: float,
        metrics: LoadMetrics,
        state: ServingState = ServingState.SERVING,
    ) -> Endpoint:
        """Record a load report and renew the lease (whatever the serving state)."""
        record = self._record(backend_id)
        now = self._clock()
        change = Change.LOAD if record.endpoint.serving_state is state else Change.STATE
        record.endpoint = replace(
            record.endpoint, load=load, metrics=metrics, reported_at=now, serving_state=state
        )
        record.expires_at = now + self.ttl
        self._notify(record.endpoint.service, backend_id, change)
        return record.endpoint

    def _remove(self, backend_id: str) -> Endpoint:
        record = self._records.pop(backend_id)
        service = record.endpoint.service
        members = self._by_service[service]
        del members[backend_id]
        if not members:
            del self._by_service[service]
        self._notify(service, backend_id, Change.LEFT)
        return record.endpoint

    def deregister(self, backend_id: str) -> Endpoint:
        self._record(backend_id)
        return self._remove(backend_id)

    def mark_down(self, backend_id: str) -> Endpoint | None:
        """Evict at once (its load stream broke); None if it was already gone."""
        if backend_id not in self._records:
            return None
        return self._remove(backend_id)

    def expire(self) -> list[Endpoint]:
        now = self._clock()
        dead = [bid for bid, rec in self._records.items() if rec.expires_at <= now]
        return [self._remove(bid) for bid in dead]

    def get(self, backend_id: str) -> Endpoint | None:
        record = self._records.get(backend_id)
        return record.endpoint if record else None

    def endpoints(self, service: str) -> tuple[Endpoint, ...]:
        members = self._by_service.get(service, {})
        return tuple(self._records[bid].endpoint for bid in members)

    def services(self) -> list[str]:
        return list(self._by_service)

    def __len__(self) -> int:
        return len(self._records)
