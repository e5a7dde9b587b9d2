"""The etcd store in this process against a real etcd: sharing, batching, takeover, outages.

Two stores over one etcd stand for two LB replicas; no gRPC servers. Every wait
is on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aetcd
import pytest

from lookaside.bench.etcd_cluster import EtcdCluster
from lookaside.errors import AlreadyExists
from lookaside.lb.ownership import Lease
from lookaside.lb.registry import InMemoryRegistry, endpoint_of
from lookaside.lb.store import StoreConfig, StoreUnavailable, codec
from lookaside.lb.store.etcd import EtcdStore
from lookaside.model import LoadMetrics, Registration

PREFIX = b"/lookaside/"


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


async def etcd_eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def reg(backend_id: str, port: int = 9000) -> Registration:
    return Registration(id=backend_id, address="127.0.0.1", port=port, service="compute")


def raw_client(etcd: EtcdCluster) -> aetcd.Client:
    return aetcd.Client(host="127.0.0.1", port=etcd.members[0].client_port, timeout=5)


async def open_store(etcd: EtcdCluster, ttl: float = 2.0, **options: object) -> EtcdStore:
    config = StoreConfig(url=etcd.url, load_share_interval=0.1, **options)  # type: ignore[arg-type]
    store = EtcdStore(InMemoryRegistry(ttl), config)
    await store.start()
    return store


@pytest.fixture
async def pair(etcd: EtcdCluster) -> AsyncIterator[tuple[EtcdStore, EtcdStore]]:
    a, b = await open_store(etcd), await open_store(etcd)
    yield a, b
    await a.stop()
    await b.stop()


async def test_a_registration_is_shared_and_its_id_held_everywhere(
    pair: tuple[EtcdStore, EtcdStore],
) -> None:
    a, b = pair
    assert await a.register(reg("x"))
    await eventually(lambda: b.view.get("x") is not None, "x at b")
    assert a.view.held("x") and not b.view.held("x")
    with pytest.raises(AlreadyExists, match=r"is held by 127\.0\.0\.1:9000"):
        await b.register(reg("x", 9001))
    assert not await b.register(reg("x"))  # the same backend through b: b takes it over
    await eventually(lambda: not a.view.held("x"), "a to let x go")
    assert b.view.held("x")


async def test_loads_travel_in_batches_never_a_write_per_report(
    etcd: EtcdCluster, pair: tuple[EtcdStore, EtcdStore]
) -> None:
    a, b = pair
    ids = [f"b{n}" for n in range(20)]
    for n, backend_id in enumerate(ids):
        await a.register(reg(backend_id, 9000 + n))
    async with raw_client(etcd) as raw:
        before = (await raw.get_prefix(PREFIX, keys_only=True)).header.revision
        reports = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            for backend_id in ids:
                a.report(backend_id, (reports % 100) / 100, LoadMetrics())
                reports += 1
            await asyncio.sleep(0.005)
        last = (reports - 1) % 100 / 100
        await eventually(lambda: all(b.view.get(i).load == last for i in ids[-1:]), "loads at b")  # type: ignore[union-attr]
        writes = (await raw.get_prefix(PREFIX, keys_only=True)).header.revision - before
    seconds = time.monotonic() - started
    print(f"\n[store] {reports} reports in {seconds:.1f}s -> {writes} etcd writes")
    assert writes <= seconds / 0.1 + 3  # one per load_share_interval, whatever the report rate
    assert reports > 20 * writes


async def test_a_report_through_another_replica_takes_the_record_over(
    etcd: EtcdCluster, pair: tuple[EtcdStore, EtcdStore]
) -> None:
    a, b = pair
    await a.register(reg("moving"))
    await eventually(lambda: b.view.get("moving") is not None, "moving at b")
    b.report("moving", 0.5, LoadMetrics())  # its load stream reconnected to b
    async with raw_client(etcd) as raw:

        async def held_by_b() -> bool:
            got = await raw.get(PREFIX + b"backends/moving")
            return got is not None and codec.decode_backend(got.value).holder == b.replica_id

        await etcd_eventually(held_by_b, "b to take the record over")
    await eventually(lambda: not a.view.held("moving"), "a to let it go")


async def test_a_mark_down_while_etcd_is_away_is_written_when_it_returns(
    etcd: EtcdCluster, pair: tuple[EtcdStore, EtcdStore]
) -> None:
    a, b = pair
    errors: list[str] = []
    a.on_error = errors.append  # what lookaside_store_errors_total counts
    await a.register(reg("gone"))
    await a.register(reg("kept", 9001))
    await eventually(lambda: b.view.get("gone") is not None, "gone at b")
    assert errors == []
    etcd.members[0].kill()
    assert a.mark_down("gone") is not None  # its stream broke: out of a's picks at once
    with pytest.raises(StoreUnavailable, match="store unreachable"):
        await a.register(reg("new", 9002))
    assert "call" in errors
    assert b.view.get("gone") is not None  # b keeps its last view
    etcd.restart(etcd.members[0])
    await eventually(lambda: b.view.get("gone") is None, "the delete to reach b", 15)
    assert await a.register(reg("new", 9002))
    await eventually(lambda: b.view.get("new") is not None, "new at b")
    assert b.view.get("kept") is not None


async def test_a_lost_lease_is_replaced_and_held_records_put_back(
    etcd: EtcdCluster, pair: tuple[EtcdStore, EtcdStore]
) -> None:
    a, b = pair
    await a.register(reg("survivor"))
    await eventually(lambda: b.view.get("survivor") is not None, "survivor at b")
    old_lease = a._lease_id
    async with raw_client(etcd) as raw:
        await raw.revoke_lease(old_lease)  # as etcd does when a lease runs out
        await eventually(lambda: a._lease_id != old_lease, "a new lease", 10)

        async def on_the_new_lease() -> bool:
            got = await raw.get(PREFIX + b"backends/survivor")
            return got is not None and got.lease == a._lease_id

        await etcd_eventually(on_the_new_lease, "the record back on the new lease")
    assert a.view.get("survivor") is not None
    await eventually(lambda: b.view.get("survivor") is not None, "survivor at b again")


async def test_a_stopped_replica_leaves_its_backends_registered(etcd: EtcdCluster) -> None:
    a, b = await open_store(etcd), await open_store(etcd)
    try:
        await a.register(reg("orphan"))
        await eventually(lambda: b.view.get("orphan") is not None, "orphan at b")
        await a.stop()
        assert b.view.get("orphan") is not None
        # Nobody reattaches it: it goes with a's lease (2 s) plus the grace.
        await eventually(lambda: b.view.get("orphan") is None, "orphan to expire", 10)
    finally:
        await b.stop()


async def test_a_bad_record_is_skipped(
    etcd: EtcdCluster, pair: tuple[EtcdStore, EtcdStore]
) -> None:
    a, b = pair
    async with raw_client(etcd) as raw:
        await raw.put(PREFIX + b"backends/junk", b"not json")
        await raw.put(PREFIX + b"loads/ghost/00000", b"[]")
    await a.register(reg("fine"))
    await eventually(lambda: b.view.get("fine") is not None, "fine at b")
    assert b.view.get("junk") is None
    assert await b.register(reg("junk", 9005))  # what is not a record is overwritten
    await eventually(lambda: a.view.get("junk") is not None, "junk, now a record, at a")


async def test_a_lease_travels_with_its_record_and_guards_it_in_etcd(
    pair: tuple[EtcdStore, EtcdStore],
) -> None:
    a, b = pair
    heard: list[tuple[str, str, str]] = []
    b.on_lease = lambda *lease: heard.append(lease)
    lease = Lease.minted("10.0.0.1", "secret-lease-id")
    await a.register(reg("owned"), lease)
    await eventually(lambda: ("owned", "10.0.0.1", lease.verifier) in heard, "the lease at b")
    assert all("secret-lease-id" not in field for entry in heard for field in entry)
    # A write that has not seen the record (a race with a's registration) by another
    # caller is refused in etcd's compare-and-set; by the same caller it is a takeover.
    intruder = ("10.0.0.2", Lease.minted("10.0.0.2", "other").verifier)
    with pytest.raises(AlreadyExists, match="another address"):
        await b._put_record(endpoint_of(reg("owned")), 0, intruder)
    _, created = await b._put_record(endpoint_of(reg("owned")), 0, ("10.0.0.1", lease.verifier))
    assert not created
