"""Faults of LB replicas and of etcd, under client traffic, with real processes.

Every client is given all replica addresses; every test asserts that no call
failed and that membership is whole afterwards. The sent/failed figures are
printed with ``pytest -s``.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from lookaside.bench.etcd_cluster import EtcdCluster
from tests.integration.harness import LoadRun, wait_until
from tests.integration.replica_fleet import Fleet, running_fleet, seconds_until

BACKENDS = {"b1", "b2", "b3"}


@pytest.fixture
def fleet(etcd: EtcdCluster, tmp_path: Path) -> Iterator[Fleet]:
    yield from running_fleet(etcd, tmp_path)


@pytest.fixture
def fleet3(etcd3: EtcdCluster, tmp_path: Path) -> Iterator[Fleet]:
    yield from running_fleet(etcd3, tmp_path)


def start(fleet: Fleet, replicas: int) -> None:
    fleet.start_replicas(replicas)
    for name in sorted(BACKENDS):
        fleet.start_backend(name, fleet.all_targets)
    fleet.wait_everywhere(BACKENDS)


def report(name: str, load: LoadRun) -> None:
    print(f"\n[{name}] {load.summary()}")
    assert load.failed == 0, load.errors[:5]


def watch_membership(fleet: Fleet, seconds: float, ids: set[str]) -> None:
    """Sample every live replica for ``seconds``; each must list all of ``ids`` each time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for replica in fleet.replicas:
            if replica.alive():
                live = fleet.live_ids(replica)
                assert ids <= live, f"{replica.name} lost {ids - live}"


def refused_unavailable(fleet: Fleet, backend_id: str) -> str:
    with pytest.raises(grpc.RpcError) as refused:
        fleet.register(fleet.replicas[0], backend_id, 9300)
    error = refused.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error  # type: ignore[attr-defined]
    return str(error.details())  # type: ignore[attr-defined]


def test_a_replica_sigkilled_under_traffic_fails_no_call_and_keeps_every_backend(
    fleet: Fleet,
) -> None:
    start(fleet, 3)
    with LoadRun(fleet.all_targets, concurrency=4, pause=0.01) as load:
        load.wait_ok(100, what="load before the kill")
        victim = fleet.replica_this_process_uses()  # the one the client's picks come from
        assert victim is not None, "the client should hold one connection to one replica"
        ids = set(BACKENDS)
        while fleet.registered_at(victim) == 0:  # each backend picks a replica at random
            assert len(ids) < 12, "no backend ever chose the client's replica"
            ids.add(f"b{len(ids) + 1}")
            fleet.start_backend(f"b{len(ids)}", fleet.all_targets)
            fleet.wait_everywhere(ids)
        held = fleet.registered_at(victim)
        victim.kill()
        # Longer than the replica's etcd lease (2 s): its backends reattached elsewhere.
        watch_membership(fleet, 4.0, ids)
        load.wait_ok(200, what="load after the kill")
    report("replica SIGKILL", load)
    print(f"  the killed replica served the client and held {held} of {len(ids)} backends")


def test_etcd_killed_then_restarted(fleet: Fleet) -> None:
    start(fleet, 2)
    member = fleet.etcd.members[0]
    with LoadRun(fleet.all_targets, concurrency=4, pause=0.01) as load:
        load.wait_ok(50, what="load before etcd dies")
        member.kill()
        load.wait_ok(150, what="picks while etcd is down")
        message = refused_unavailable(fleet, "newcomer")
        assert "store unreachable" in message, message
        fleet.start_backend("late", fleet.all_targets)  # keeps retrying until etcd is back
        watch_membership(fleet, 1.0, BACKENDS)  # the views stay as they were
        fleet.etcd.restart(member)
        fleet.wait_everywhere(BACKENDS | {"late"})
        load.wait_ok(100, what="load after etcd is back")
    report("etcd SIGKILL + restart", load)
    assert all(r.alive() for r in fleet.replicas)
    print(f"  registration refused while etcd was down: {message!r}")


def test_etcd_paused_past_the_lease_then_resumed(fleet: Fleet) -> None:
    start(fleet, 2)
    member = fleet.etcd.members[0]
    with LoadRun(fleet.all_targets, concurrency=4, pause=0.01) as load:
        load.wait_ok(50, what="load before etcd stops")
        member.signal(signal.SIGSTOP)
        try:
            load.wait_ok(150, what="picks while etcd is stopped")
            message = refused_unavailable(fleet, "newcomer")
            assert "store unreachable" in message, message
            time.sleep(2.5)  # the fault itself: etcd stays stopped past every lease (2 s)
        finally:
            member.signal(signal.SIGCONT)
        fleet.wait_everywhere(BACKENDS, timeout=10)
        watch_membership(fleet, 3.0, BACKENDS)
        fleet.register(fleet.replicas[1], "newcomer", 9300)  # registrations work again
        wait_until(lambda: "newcomer" in fleet.live_ids(fleet.replicas[0]), 5, "newcomer at 0")
        load.wait_ok(100, what="load after etcd resumed")
    report("etcd SIGSTOP 2.5 s + SIGCONT", load)
    assert all(r.alive() for r in fleet.replicas)


def test_a_three_member_etcd_losing_one_member_shows_nothing(fleet3: Fleet) -> None:
    start(fleet3, 2)
    a, b = fleet3.replicas
    with LoadRun(fleet3.all_targets, concurrency=4, pause=0.01) as load:
        load.wait_ok(50, what="load before a member dies")
        fleet3.etcd.members[0].kill()
        fleet3.register(a, "probe", 9400)  # registers once (and expires: it never reports)
        seen = seconds_until(lambda: "probe" in fleet3.live_ids(b), 5, "probe at b")
        fleet3.start_backend("after", fleet3.all_targets)
        fleet3.wait_everywhere(BACKENDS | {"after"}, timeout=10)
        watch_membership(fleet3, 3.0, BACKENDS | {"after"})
        load.wait_ok(100, what="load after a member died")
    report("etcd 3 members, one SIGKILLed", load)
    print(f"  registration via A seen at B {seen * 1000:.0f} ms after it returned")
    assert seen < 1.0
