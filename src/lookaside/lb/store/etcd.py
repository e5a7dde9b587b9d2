"""The etcd store: several LB replicas share one membership (``--store etcd://...``).

Layout, under one prefix (``/lookaside/`` by default):

* ``backends/<id>``: the backend's membership record (:mod:`.codec`), which
  replica *holds* it, and who owns it (the registering IP and a verifier of its
  lease id, see :mod:`lookaside.lb.ownership`), attached to the holder's etcd lease;
* ``loads/<replica>/<n>``: the latest loads that replica heard, batched;
* ``replicas/<replica>``: that the replica is alive (on its lease too).

Lease mapping: **one etcd lease per replica**, not per backend. The replica
whose load stream a backend uses holds it: it expires the backend when its
reports stop (the LB's ``--ttl``) and deletes its record when the stream
breaks. If the replica itself dies, its lease runs out and etcd deletes what
it held, unless the backends reattached to another replica first (their
reporter re-registers there within a second or two; that replica takes the
record over onto its own lease with one write). Keepalives therefore cost
``replicas x 3 / lease TTL`` messages a second, whatever the fleet size.

Load: a replica applies the reports it hears at once, and writes the ones it
heard since the last write every ``load_share_interval`` in one transaction
(``ceil(n / batch_entries)`` values): etcd writes for load are ``replicas /
interval``, independent of how often backends report. Every replica watches the
prefix and applies the others' records and batches to its local view, so picks
are local and go on while etcd is away. ``docs/ARCHITECTURE.md`` has the full
cost model.

Faults: an etcd call that does not answer within ``timeout`` makes
``register``/``deregister`` raise :class:`StoreUnavailable` (``UNAVAILABLE``,
nothing written). Reports, mark-downs and expiries are applied locally at once
and written when etcd answers again; the watch resumes from the last revision
seen (or relists after a compaction) and a replica puts back the records of
backends it still hears from, so nothing accepted is lost.

The client is ``aetcd`` (etcd v3 gRPC API, asyncio). It joins ``host:port``
into a gRPC target; we hand it our own target, which may list several members,
so one channel fails over between them (pick_first, as for LB replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aetcd
import aetcd.exceptions
import aetcd.rtypes
from grpc import aio

from lookaside import addresses, channels
from lookaside.backoff import Backoff
from lookaside.errors import AlreadyExists
from lookaside.lb.ownership import Lease
from lookaside.lb.registry import InMemoryRegistry, endpoint_of
from lookaside.lb.store import codec
from lookaside.lb.store.base import StoreUnavailable, ignore_error, ignore_lease
from lookaside.lb.store.config import StoreConfig
from lookaside.model import Endpoint, LoadMetrics, Registration, ServingState

log = logging.getLogger("lookaside.lb.store")

T = TypeVar("T")
Owner = tuple[str, str]  # (caller IP, lease verifier), as a record stores them

#: What a failed etcd call raises through aetcd and grpc; all mean "etcd did not answer".
_ETCD_ERRORS = (aetcd.exceptions.ClientError, aio.AioRpcError, TimeoutError, OSError)
_MAX_TXN_PUTS = 64  # etcd refuses transactions of more than 128 operations by default
_RETRY_PAUSE = 0.05  # seconds between two attempts of one call (a member failing over)
#: Seconds another replica's records outlive the expiry of its lease in this view: etcd
#: revokes every lease that ran out while it was paused or partitioned, and a replica
#: still alive puts its records back within moments of etcd answering again.
LEASE_GRACE = 1.0


def _client(config: StoreConfig) -> aetcd.Client:
    host, _, port = config.etcd_target().rpartition(":")
    options: dict[str, Any] = dict(channels.RECONNECT_OPTIONS)
    if addresses.is_replica_list(config.url[len("etcd://") :]):
        options["grpc.service_config"] = addresses.REPLICAS_SERVICE_CONFIG
    # etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
    options["grpc.keepalive_time_ms"] = 10_000
    options["grpc.keepalive_timeout_ms"] = 3_000
    return aetcd.Client(host=host, port=int(port), timeout=config.attempt_timeout, options=options)


class EtcdStore:
    """Membership in etcd, shared by every replica using the same prefix."""

    def __init__(
        self,
        view: InMemoryRegistry,
        config: StoreConfig,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.view = view
        self.config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self.replica_id = f"{socket.gethostname()}-{self._rng.getrandbits(32):08x}"
        self._client = _client(config)
        prefix = config.prefix.encode()
        self._backends = prefix + b"backends/"
        self._loads = prefix + b"loads/"
        self._replicas = prefix + b"replicas/"
        self._replica_key = self._replicas + self.replica_id.encode()
        self._prefix = prefix
        self._lease_ttl = max(1, math.ceil(view.ttl))  # etcd leases count whole seconds
        self._lease_id = 0
        self._revision = 0  # the last etcd revision applied to the view
        self._holders: dict[str, str] = {}  # backend id -> replica holding its lease
        self._owners: dict[str, Owner] = {}  # backend id -> (caller IP, lease verifier) stored
        self._heard: dict[str, None] = {}  # held backends reported since the last load write
        self._to_put: set[str] = set()  # held backends whose record etcd must (re)get
        self._to_delete: dict[str, int] = {}  # backend id -> revision of the record to delete
        self._load_chunks = 0  # load values written last time
        self._replica_leases: dict[str, int] = {}  # replica id -> its lease (from its key)
        self._lapsed: dict[str, int] = {}  # replica id -> revision its lease ran out at
        self._just_deleted: dict[str, int] = {}  # backend id -> deletion revision, to settle
        self._grace: dict[str, float] = {}  # backend id -> when to drop it if not put back
        self._lease_check = asyncio.Event()
        self._lease_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reachable = True
        self._closing = False
        self.on_error: Callable[[str], None] = ignore_error
        self.on_lease: Callable[[str, str, str], None] = ignore_lease

    def describe(self) -> str:
        members = self.config.url[len("etcd://") :]
        return f"etcd {members} prefix={self.config.prefix} replica={self.replica_id}"

    # --- calls to etcd ---

    def _unreachable(self, error: BaseException | None, operation: str) -> StoreUnavailable:
        self.on_error(operation)
        if self._reachable:
            self._reachable = False
            log.warning("store unreachable: etcd %s: %s", self.config.url, error or "timed out")
        return StoreUnavailable(
            f"store unreachable: etcd at {self.config.url[len('etcd://') :]} did not answer "
            f"within {self.config.timeout:g}s; nothing was changed, retry later"
        )

    def _answered(self) -> None:
        if not self._reachable:
            self._reachable = True
            self._lease_check.set()  # did our lease outlive the outage?
            log.info("store reachable again: etcd %s", self.config.url)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One etcd call, retried until ``timeout`` (a member may be failing over)."""
        last: BaseException | None = None
        try:
            async with asyncio.timeout(self.config.timeout):
                while True:
                    try:
                        result = await make()
                    except _ETCD_ERRORS as error:
                        if _is_lease_gone(error):
                            raise
                        last = error
                        await asyncio.sleep(_RETRY_PAUSE)
                        continue
                    self._answered()
                    return result
        except TimeoutError:
            raise self._unreachable(last, "call") from None

    async def _txn(self, compare: list[Any], success: list[Any], failure: list[Any]) -> Any:
        return await self._call(lambda: self._client.transaction(compare, success, failure))

    # --- lifecycle ---

    async def start(self) -> None:
        """Join: a lease, the replica key, then the whole prefix into the view. Waits for etcd."""
        backoff = Backoff(cap=2.0, rng=self._rng)
        while True:
            try:
                await self._grant_lease()
                await self._resync()
                break
            except StoreUnavailable as error:
                delay = backoff.next_delay()
                log.warning("waiting for the store: %s; retry in %.1fs", error, delay)
                await asyncio.sleep(delay)
        self._tasks = [
            asyncio.create_task(self._watch_loop(), name="store-watch"),
            asyncio.create_task(self._keepalive_loop(), name="store-keepalive"),
            asyncio.create_task(self._write_loop(), name="store-writes"),
        ]
        log.info("store joined: %s lease_ttl=%ds", self.describe(), self._lease_ttl)

    async def stop(self) -> None:
        """Leave, keeping the lease: backends this replica held stay registered until they
        reattach elsewhere (or the lease runs out). Its replica key and loads go now."""
        self._closing = True
        pending = set(self._tasks)
        while pending:  # cancel again if a cancel raced a timeout and was swallowed
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        with contextlib.suppress(StoreUnavailable):
            t = self._client.transactions
            deletes = [t.delete(self._replica_key), t.delete(self._load_key(0), self._load_end())]
            await self._txn([], deletes, [])
        # aetcd's close can wait forever on a full watch request queue: bound it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.timeout):
                await self._client.close()

    async def _grant_lease(self) -> None:
        lease = await self._call(lambda: self._client.lease(self._lease_ttl))
        self._lease_id, self._lease_ttl = lease.id, max(1, int(lease.ttl))
        started = json.dumps({"lease_ttl": self._lease_ttl}).encode()
        await self._call(lambda: self._client.put(self._replica_key, started, lease=self._lease_id))

    async def _keepalive_loop(self) -> None:
        period = self._lease_ttl / 3
        while not self._closing:  # a cancel swallowed by a timeout still ends the loop
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lease_check.wait(), period)
            self._lease_check.clear()
            try:
                try:
                    reply = await self._call(lambda: self._client.refresh_lease(self._lease_id))
                    lost = reply is None or reply.TTL <= 0
                except _ETCD_ERRORS as error:  # the lease itself is gone
                    lost = _is_lease_gone(error)
                if lost:
                    await self._lease_lost()
            except StoreUnavailable:
                continue

    async def _lease_lost(self) -> None:
        """Our lease ran out (etcd was away longer than it): a new one, records put back."""
        lost = self._lease_id
        async with self._lease_lock:
            if self._lease_id != lost:
                return  # another task replaced it already
            log.warning("store lease expired (etcd away too long); reattaching held backends")
            await self._grant_lease()
        self._to_put.update(i for i in self.view.ids() if self.view.held(i))
        self._wake.set()

    # --- the view, fed from etcd ---

    async def _resync(self) -> None:
        """Relist the prefix and make the view match it (at start, after a compaction)."""
        listing = await self._call(lambda: self._client.get_prefix(self._prefix))
        in_etcd: set[str] = set()
        batches: list[tuple[str, bytes]] = []
        for kv in listing:
            key = bytes(kv.key)
            if key.startswith(self._backends):
                backend_id = key[len(self._backends) :].decode()
                in_etcd.add(backend_id)
                self._apply_record(backend_id, kv.value, kv.mod_revision, kv.lease)
            elif key.startswith(self._loads):
                batches.append((key[len(self._loads) :].decode().partition("/")[0], kv.value))
            elif key.startswith(self._replicas):
                self._replica_leases[key[len(self._replicas) :].decode()] = kv.lease
        for backend_id in self.view.ids():
            if backend_id not in in_etcd and backend_id not in self._to_delete:
                self._record_gone(backend_id)
        for replica, value in batches:
            self._apply_loads(replica, value)
        self._revision = max(self._revision, listing.header.revision)

    async def _watch_loop(self) -> None:
        """Follow the prefix from the last revision applied, forever.

        A broken stream is resumed at once (the channel moves to another member);
        only a resume that fails counts as etcd being unreachable, with back-off.
        """
        backoff = Backoff(cap=2.0, rng=self._rng)
        failures = 0
        while not self._closing:  # a cancel swallowed by a timeout still ends the loop
            try:
                watch = await self._client.watch_prefix(
                    self._prefix, start_revision=self._revision + 1
                )
                self._answered()
                backoff.reset()
                failures = 0
                async for event in watch:
                    self._apply_event(event)
            except aetcd.exceptions.RevisionCompactedError:
                with contextlib.suppress(StoreUnavailable):
                    await self._resync()
            except _ETCD_ERRORS as error:
                failures += 1
                if failures == 1:
                    await asyncio.sleep(_RETRY_PAUSE)
                    continue
                self._unreachable(error, "watch")
                await asyncio.sleep(backoff.next_delay())

    def _apply_event(self, event: aetcd.rtypes.Event) -> None:
        kv = event.kv
        key = bytes(kv.key)
        self._revision = max(self._revision, kv.mod_revision)
        put = event.kind == aetcd.rtypes.EventKind.PUT
        if key.startswith(self._backends):
            backend_id = key[len(self._backends) :].decode()
            if put:
                self._grace.pop(backend_id, None)
                self._apply_record(backend_id, kv.value, kv.mod_revision, kv.lease)
            else:
                self._to_delete.pop(backend_id, None)
                if not self._just_deleted:
                    asyncio.get_running_loop().call_soon(self._settle_deletes)
                self._just_deleted[backend_id] = kv.mod_revision
        elif key.startswith(self._loads) and put:
            self._apply_loads(key[len(self._loads) :].decode().partition("/")[0], kv.value)
        elif key.startswith(self._replicas):
            replica = key[len(self._replicas) :].decode()
            if put:
                self._replica_leases[replica] = kv.lease
            elif self._replica_leases.pop(replica, None) is not None:
                self._lapsed[replica] = kv.mod_revision

    def _settle_deletes(self) -> None:
        """Apply the deletions of one watch response, once all its events are in.

        etcd deletes the keys of a lease that ran out in one revision, the
        replica's own key among them (sorted after ``backends/``). Records that
        left with their replica's lease stay :data:`LEASE_GRACE` seconds, so a
        paused etcd does not make every backend blink; any other deletion (a
        deregistration, a broken stream, an expiry) applies at once.
        """
        deleted, self._just_deleted = self._just_deleted, {}
        lapsed_at = set(self._lapsed.values())
        self._lapsed.clear()
        for backend_id, revision in deleted.items():
            if revision not in lapsed_at:
                self._drop(backend_id)  # deleted on purpose, by whichever replica
            elif self.view.held(backend_id):
                self._record_gone(backend_id)  # our own lease ran out: put it back
            else:
                self._grace[backend_id] = self._clock() + LEASE_GRACE

    def _drop_lapsed(self) -> None:
        now = self._clock()
        for backend_id, deadline in list(self._grace.items()):
            if deadline <= now:
                del self._grace[backend_id]
                self._record_gone(backend_id)

    def _apply_record(self, backend_id: str, value: bytes, revision: int, lease: int) -> None:
        if backend_id in self._to_delete:
            return  # marked down here while etcd was away; the delete is on its way
        try:
            record = codec.decode_backend(value)
        except ValueError as error:
            log.warning("skipped a bad record key=%s: %s", backend_id, error)
            return
        mine = record.holder == self.replica_id
        self._holders[backend_id] = record.holder
        self.view.upsert(record.endpoint, revision, held=mine)
        if record.verifier:  # after the upsert: a record that moved dropped the old lease
            self._owners[backend_id] = (record.caller, record.verifier)
            self.on_lease(backend_id, record.caller, record.verifier)
        if mine and lease != self._lease_id:
            self._to_put.add(backend_id)  # on an old lease of ours: move it to the live one
            self._wake.set()

    def _record_gone(self, backend_id: str) -> None:
        """etcd lost the record with a lease. A backend this replica still hears stays."""
        if self.view.held(backend_id) and not self._closing:
            self._to_put.add(backend_id)
            self._wake.set()
            return
        self._drop(backend_id)

    def _drop(self, backend_id: str) -> None:
        self._holders.pop(backend_id, None)
        self._owners.pop(backend_id, None)
        self._to_put.discard(backend_id)
        self.view.mark_down(backend_id)

    def _apply_loads(self, replica: str, value: bytes) -> None:
        if replica == self.replica_id:
            return
        try:
            entries = codec.decode_loads(value)
        except ValueError as error:
            log.warning("skipped a bad load batch from replica=%s: %s", replica, error)
            return
        now = self._clock()
        for entry in entries:
            if self._holders.get(entry.backend_id) == replica:
                self.view.apply_load(
                    entry.backend_id, entry.load, entry.metrics, now - entry.age, entry.state
                )

    # --- writes ---

    async def _put_record(
        self, endpoint: Endpoint, expected: int, owner: Owner | None
    ) -> tuple[int, bool]:
        """Write the record held by this replica, with its owner's lease; (revision, created).

        Compare-and-set on the record's revision, so a replica never overwrites a
        record it has not seen. On a mismatch the current record comes back in the
        same round trip: the id at another place, or with another caller's lease, is
        :class:`AlreadyExists`; the same backend (another replica's, or our own
        earlier write) is taken over.
        """
        t = self._client.transactions
        key = self._backends + endpoint.id.encode()
        caller, verifier = owner or ("", "")
        record = codec.BackendRecord(endpoint, self.replica_id, caller, verifier)
        value = codec.encode_backend(record)
        created = expected == 0
        for _ in range(3):
            try:
                succeeded, responses = await self._txn(
                    [t.mod(key) == expected],
                    [t.put(key, value, lease=self._lease_id)],
                    [t.get(key)],
                )
            except _ETCD_ERRORS as error:
                if not _is_lease_gone(error):
                    raise
                await self._lease_lost()
                continue
            if succeeded:
                return responses[0].response_put.header.revision, created
            current = responses[0][0][1] if responses and responses[0] else None
            if current is None:
                expected = 0
                continue
            expected = current.mod_revision
            try:
                stored = codec.decode_backend(current.value)
            except ValueError:
                continue  # not a record: ours to overwrite
            other = stored.endpoint
            place = (other.address, other.port, other.service)
            if place != (endpoint.address, endpoint.port, endpoint.service):
                raise AlreadyExists(
                    f"backend id {endpoint.id!r} is held by {other.target} "
                    f"(service {other.service!r}) until its lease expires"
                )
            if stored.verifier not in ("", verifier) and stored.caller != caller:
                raise AlreadyExists(
                    f"backend id {endpoint.id!r} is held by a backend registered from "
                    "another address until its lease expires"
                )
            created = False  # the same backend, registered already: a renewal
        raise StoreUnavailable(f"store busy: the record of {endpoint.id!r} kept changing; retry")

    def _check_open(self) -> None:
        if self._closing:
            raise StoreUnavailable("this LB replica is stopping; use another replica")

    async def register(self, registration: Registration, lease: Lease | None = None) -> bool:
        self._check_open()
        existing = self.view.check_register(registration)
        owner = (lease.caller, lease.verifier) if lease is not None else None
        if (
            existing is not None
            and self.view.held(registration.id)
            and (existing.capacity, existing.weight) == (registration.capacity, registration.weight)
            and registration.id not in self._to_put
            and self._owners.get(registration.id) == owner
        ):
            return self.view.register(registration)  # a renewal etcd already has
        endpoint = endpoint_of(registration)
        expected = self.view.revision(registration.id) if existing is not None else 0
        revision, created = await self._put_record(endpoint, expected, owner)
        self._holders[registration.id] = self.replica_id
        if owner is not None:
            self._owners[registration.id] = owner
        self._to_put.discard(registration.id)
        self._to_delete.pop(registration.id, None)
        self.view.upsert(endpoint, revision, held=True)
        return created

    async def deregister(self, backend_id: str) -> Endpoint:
        self._check_open()
        endpoint = self.view.get(backend_id)
        if endpoint is None:
            return self.view.deregister(backend_id)  # raises NotFound
        t = self._client.transactions
        await self._txn([], [t.delete(self._backends + backend_id.encode())], [])
        self._drop(backend_id)  # unless our watch did it first
        return endpoint

    def report(
        self,
        backend_id: str,
        load: float,
        metrics: LoadMetrics,
        state: ServingState = ServingState.SERVING,
    ) -> Endpoint:
        held = self.view.held(backend_id)
        endpoint = self.view.report(backend_id, load, metrics, state)
        self._heard[backend_id] = None
        if not held:  # its stream moved here: take its record over
            self._to_put.add(backend_id)
            self._wake.set()
        return endpoint

    def mark_down(self, backend_id: str) -> Endpoint | None:
        if self._closing or not self.view.held(backend_id):
            return None  # another replica holds it, or we are the ones going away
        revision = self.view.revision(backend_id)
        endpoint = self.view.mark_down(backend_id)
        self._forget_locally(backend_id, revision)
        return endpoint

    def expire(self) -> list[Endpoint]:
        gone = self.view.expire_with_revisions()  # O(due leases), not O(n)
        for endpoint, revision in gone:
            self._forget_locally(endpoint.id, revision)
        return [endpoint for endpoint, _ in gone]

    def _forget_locally(self, backend_id: str, revision: int) -> None:
        self._holders.pop(backend_id, None)
        self._owners.pop(backend_id, None)
        self._to_put.discard(backend_id)
        self._heard.pop(backend_id, None)
        if revision:
            self._to_delete[backend_id] = revision
            self._wake.set()

    async def _write_loop(self) -> None:
        """Deletes and reattachments at once, load batches every ``load_share_interval``."""
        next_loads = self._clock() + self.config.load_share_interval
        while not self._closing:  # a cancel swallowed by a timeout still ends the loop
            timeout = max(0.0, next_loads - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            self._drop_lapsed()
            try:
                await self._write_deletes()
                await self._write_puts()
                if self._clock() >= next_loads:
                    next_loads = self._clock() + self.config.load_share_interval
                    await self._write_loads()
            except StoreUnavailable:
                await asyncio.sleep(self.config.load_share_interval)
            except _ETCD_ERRORS as error:
                if _is_lease_gone(error):
                    with contextlib.suppress(StoreUnavailable):
                        await self._lease_lost()

    async def _write_deletes(self) -> None:
        t = self._client.transactions
        for backend_id, revision in list(self._to_delete.items()):
            key = self._backends + backend_id.encode()
            await self._txn([t.mod(key) == revision], [t.delete(key)], [])
            if self._to_delete.get(backend_id) == revision:
                del self._to_delete[backend_id]

    async def _write_puts(self) -> None:
        for backend_id in list(self._to_put):
            endpoint = self.view.get(backend_id)
            if endpoint is None or not self.view.held(backend_id):
                self._to_put.discard(backend_id)
                continue
            try:
                revision, _ = await self._put_record(
                    endpoint, self.view.revision(backend_id), self._owners.get(backend_id)
                )
            except AlreadyExists as error:  # the id was registered elsewhere meanwhile
                log.warning("gave up id=%s: %s", backend_id, error)
                self._to_put.discard(backend_id)
                self.view.release(backend_id)
                continue
            self._to_put.discard(backend_id)
            self._holders[backend_id] = self.replica_id
            self.view.set_revision(backend_id, revision)

    def _load_key(self, chunk: int) -> bytes:
        return self._loads + f"{self.replica_id}/{chunk:05d}".encode()

    def _load_end(self) -> bytes:
        return self._loads + f"{self.replica_id}0".encode()  # '0' follows '/'

    async def _write_loads(self) -> None:
        now = self._clock()
        entries = []
        for backend_id in self._heard:
            endpoint = self.view.get(backend_id)
            if endpoint is not None and self.view.held(backend_id):
                age = max(0.0, now - endpoint.reported_at)
                entries.append(
                    codec.LoadEntry(
                        backend_id, endpoint.load, age, endpoint.metrics, endpoint.serving_state
                    )
                )
        if not entries:
            return
        size = self.config.batch_entries
        chunks = [entries[i : i + size] for i in range(0, len(entries), size)]
        t = self._client.transactions
        ops = [
            t.put(self._load_key(n), codec.encode_loads(chunk), lease=self._lease_id)
            for n, chunk in enumerate(chunks)
        ]
        if self._load_chunks > len(chunks):
            ops.append(t.delete(self._load_key(len(chunks)), self._load_end()))
        for start in range(0, len(ops), _MAX_TXN_PUTS):
            await self._txn([], ops[start : start + _MAX_TXN_PUTS], [])
        self._load_chunks = len(chunks)
        self._heard.clear()


def _is_lease_gone(error: BaseException) -> bool:
    return "requested lease not found" in str(error)
