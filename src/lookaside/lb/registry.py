"""Who is alive, per service: the LB's local view of backends, leases and latest load.

Pure Python with an injected clock, so leases are tested without sleeping.
Every method runs on the LB's event loop thread; there is no locking because
nothing here awaits. Picks are served from this view alone, so they go on
while a shared store is unreachable.

Leases: a backend is alive while it keeps renewing (a load report, unary or
streamed, renews it). ``expire()`` evicts those whose lease ran out; the LB
calls it a few times per TTL. A broken load stream evicts at once
(``mark_down``). ``expire()`` costs O(log n) per lease that ran out or was
renewed since it last looked, not O(n): leases wait in a heap of deadlines with
one entry per backend, and an entry that comes due for a renewed lease is put
back at the new deadline (a lazy timer queue), so a report renews a lease in O(1).
Ids are unique across the whole LB, so a ``LoadReport`` (which
carries only an id, as in the seed) is unambiguous.

Where the view comes from is :mod:`lookaside.lb.store`'s business. With the
in-memory store this replica's own calls are the whole truth. With etcd, the
store writes first and then feeds the view: ``upsert`` / ``apply_load`` /
``mark_down`` for what other replicas did, ``hold`` / ``release`` for which
backends this replica keeps the lease of. Only *held* backends expire here;
the others belong to the replica whose load stream they use, and etcd removes
them if that replica dies.
"""

from __future__ import annotations

import heapq
import itertools
import math
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
    expires_at: float  # math.inf while another replica holds the backend's lease
    revision: int = 0  # the store's revision of the membership record (0: not stored)
    queued_at: float = math.inf  # the deadline of its entry in the lease heap (inf: none)


def endpoint_of(registration: Registration, registered_at: float = 0.0) -> Endpoint:
    """The endpoint a registration makes, before any load report."""
    return Endpoint(
        id=registration.id,
        address=registration.address,
        port=registration.port,
        service=registration.service,
        capacity=registration.capacity,
        weight=registration.weight,
        load=registration.load,
        registered_at=registered_at,
    )


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
    """The local view: the whole registry on its own, or a store's replica of it."""

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
        #: (deadline, tie-breaker, id, record): at most one live entry per record.
        self._deadlines: list[tuple[float, int, str, _Record]] = []
        self._sequence = itertools.count()

    def _lease_until(self, record: _Record, backend_id: str, expires_at: float) -> None:
        """Set the record's lease; queue a deadline only if none as early is queued."""
        record.expires_at = expires_at
        if expires_at < record.queued_at:
            record.queued_at = expires_at
            heapq.heappush(self._deadlines, (expires_at, next(self._sequence), backend_id, record))

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
        existing = self.check_register(registration)
        if existing is not None:
            record = self._records[registration.id]
            record.endpoint = replace(
                existing, capacity=registration.capacity, weight=registration.weight
            )
            self._lease_until(record, registration.id, now + self.ttl)
            return False
        endpoint = endpoint_of(registration, registered_at=now)
        self._insert(endpoint, now + self.ttl)
        return True

    def check_register(self, registration: Registration) -> Endpoint | None:
        """The live endpoint this registration would renew, None if it would be new.

        Raises what :meth:`register` raises (:class:`AlreadyExists` for the id at
        another place, :class:`ResourceExhausted` over the limit), changing nothing:
        a store checks here before it writes.
        """
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
            return current
        members = self._by_service.get(registration.service, {})
        if len(members) >= self._max_backends:
            raise ResourceExhausted(
                f"service {registration.service!r} already has {len(members)} backends "
                f"(the limit is {self._max_backends})"
            )
        return None

    def _insert(self, endpoint: Endpoint, expires_at: float, revision: int = 0) -> None:
        record = self._records[endpoint.id] = _Record(endpoint, math.inf, revision)
        self._lease_until(record, endpoint.id, expires_at)
        self._by_service.setdefault(endpoint.service, {})[endpoint.id] = None
        self._notify(endpoint.service, endpoint.id, Change.JOINED)

    # --- fed by a shared store (see lookaside.lb.store) ---

    def upsert(self, endpoint: Endpoint, revision: int, held: bool) -> Change | None:
        """Apply a membership record the store holds at ``revision``; the change made.

        Older revisions than the one applied are ignored, so a watch event for a
        write this replica already applied changes nothing. A record for the id at
        another place replaces the old one (LEFT, then JOINED). Load figures and
        times already known are kept: membership records carry no load.
        """
        record = self._records.get(endpoint.id)
        expires_at = self._clock() + self.ttl if held else math.inf
        if record is None:
            self._insert(replace(endpoint, registered_at=self._clock()), expires_at, revision)
            return Change.JOINED
        if revision and revision <= record.revision:
            return None
        current = record.endpoint
        if (current.address, current.port, current.service) != (
            endpoint.address,
            endpoint.port,
            endpoint.service,
        ):
            self._remove(endpoint.id)
            self._insert(replace(endpoint, registered_at=self._clock()), expires_at, revision)
            return Change.JOINED
        record.revision = revision
        self._lease_until(record, endpoint.id, expires_at)
        if (current.capacity, current.weight) == (endpoint.capacity, endpoint.weight):
            return None
        record.endpoint = replace(current, capacity=endpoint.capacity, weight=endpoint.weight)
        self._notify(current.service, endpoint.id, Change.LOAD)
        return Change.LOAD

    def apply_load(
        self,
        backend_id: str,
        load: float,
        metrics: LoadMetrics,
        reported_at: float,
        state: ServingState = ServingState.SERVING,
    ) -> bool:
        """A report another replica heard; unlike :meth:`report` it renews no lease."""
        record = self._records.get(backend_id)
        if record is None:
            return False
        change = Change.LOAD if record.endpoint.serving_state is state else Change.STATE
        record.endpoint = replace(
            record.endpoint,
            load=load,
            metrics=metrics,
            reported_at=reported_at,
            serving_state=state,
        )
        self._notify(record.endpoint.service, backend_id, change)
        return True

    def hold(self, backend_id: str) -> None:
        """This replica keeps the backend's lease now: it expires here unless renewed."""
        record = self._records.get(backend_id)
        if record is not None:
            self._lease_until(record, backend_id, self._clock() + self.ttl)

    def release(self, backend_id: str) -> None:
        """Another replica keeps the lease now: never expire it here."""
        record = self._records.get(backend_id)
        if record is not None:
            self._lease_until(record, backend_id, math.inf)

    def held(self, backend_id: str) -> bool:
        record = self._records.get(backend_id)
        return record is not None and not math.isinf(record.expires_at)

    def revision(self, backend_id: str) -> int:
        """The store revision of the backend's record; 0 if unknown or not stored."""
        record = self._records.get(backend_id)
        return record.revision if record else 0

    def set_revision(self, backend_id: str, revision: int) -> None:
        record = self._records.get(backend_id)
        if record is not None:
            record.revision = max(record.revision, revision)

    def ids(self) -> list[str]:
        """Every backend id in the view, in registration order per service."""
        return list(self._records)

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
        self._lease_until(record, backend_id, now + self.ttl)
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
        """Evict every backend whose lease ran out (in deadline order)."""
        return [endpoint for endpoint, _ in self.expire_with_revisions()]

    def expire_with_revisions(self) -> list[tuple[Endpoint, int]]:
        """:meth:`expire`, each evicted backend with its record's store revision."""
        now = self._clock()
        dead: list[tuple[Endpoint, int]] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, backend_id, record = heapq.heappop(heap)
            if self._records.get(backend_id) is not record or deadline != record.queued_at:
                continue  # it left, or a sooner entry replaced this one
            record.queued_at = math.inf
            if record.expires_at <= now:
                dead.append((self._remove(backend_id), record.revision))
            else:  # renewed since: wait for the new deadline (none while another holds it)
                self._lease_until(record, backend_id, record.expires_at)
        return dead

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
