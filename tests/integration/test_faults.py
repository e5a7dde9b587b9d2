"""Faults under load with real processes: no request of a LookasideClient fails.

Each test runs a few hundred requests over a few seconds (:class:`LoadRun`)
while it kills or restarts something, waits on conditions with deadlines, and
asserts that every request succeeded with the right answer. The figures are
printed (``pytest -s``) for the README.
"""

from __future__ import annotations

import asyncio
import signal

import grpc

from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster, LoadRun, wait_until

BACKENDS = ("b1", "b2", "b3")


def start_three(cluster: Cluster, policy: str = "round_robin", work_ms: float = 2) -> None:
    cluster.start_lb(policy)
    for name in BACKENDS:
        cluster.start_backend(name, work_ms=work_ms)
    cluster.wait_registered(set(BACKENDS))


def report(name: str, load: LoadRun) -> None:
    print(f"\n[{name}] {load.summary()}")
    assert load.failed == 0, load.errors[:5]


def test_backend_sigkill_under_load(cluster: Cluster) -> None:
    start_three(cluster)
    with LoadRun(cluster.lb_target, concurrency=8) as load:
        load.wait_ok(100, what="load before the kill")
        cluster.backends["b2"].kill()
        load.wait_ok(200, what="load after the kill")
        wait_until(lambda: cluster.live_ids() == {"b1", "b3"}, 5, "b2 to leave the LB")
        after = load.served_by.copy()
        load.wait_ok(100, what="load with b2 gone")
    report("backend SIGKILL", load)
    assert load.served_by["b2"] == after["b2"], "a dead backend served requests"


def test_lb_sigkill_under_load(cluster: Cluster) -> None:
    start_three(cluster)
    lb_port = cluster.lb.port  # type: ignore[union-attr]
    with LoadRun(cluster.lb_target, concurrency=4, pause=0.01) as load:
        load.wait_ok(100, what="load through the LB")
        cluster.lb.kill()  # type: ignore[union-attr]
        # The client carries on with the backends it was handed, round-robin.
        wait_until(lambda: load.via_memory >= 150, 20, "requests served while the LB is down")
        assert set(load.served_from_memory) == set(BACKENDS)
        cluster.start_lb("round_robin", port=lb_port)
        cluster.wait_registered(set(BACKENDS), timeout=10)
        # ... and goes back to the LB on its own once it answers again.
        back = load.via_lb
        wait_until(lambda: load.via_lb >= back + 100, 10, "the client to use the LB again")
    report("LB SIGKILL", load)
    assert load.via_memory >= 150


def test_rolling_restart_with_sigterm_under_load(cluster: Cluster) -> None:
    start_three(cluster, work_ms=5)
    with LoadRun(cluster.lb_target, concurrency=4, pause=0.02) as load:
        load.wait_ok(50, what="load before the restarts")
        for name in BACKENDS:
            process = cluster.backends[name]
            process.signal(signal.SIGTERM)
            assert process.wait(15) == 0, process.log_text()[-2000:]
            assert "deregistered id=" + name in process.log_text()
            cluster.start_backend(name, work_ms=5)
            cluster.wait_registered({name})
            load.wait_ok(50, what=f"load after restarting {name}")
    report("rolling restart", load)
    assert set(load.served_by) == set(BACKENDS)


async def _two_at_once(target: str) -> list[grpc.StatusCode]:
    """Two overlapping tasks on a one-worker, no-queue backend: one must be rejected."""

    async def one(stub: pb_grpc.ComputeStub, text: str) -> grpc.StatusCode:
        try:
            await stub.ComputeTask(pb.TaskRequest(input=text), timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.ComputeStub(channel)
        return sorted(await asyncio.gather(one(stub, "a"), one(stub, "b")), key=str)


def test_overload_rejects_at_once_client_retries_lb_sees_saturation(cluster: Cluster) -> None:
    # Reports every 10 s: only the backend's immediate report after a rejection can
    # show the LB its saturation within the few seconds this test waits.
    cluster.start_lb("least_load", "--ttl", "30", "--report-interval", "10")
    small = ("--workers", "1", "--max-queue", "0", "--report-interval", "10")
    cluster.start_backend("small", *small, work_ms=300)
    cluster.start_backend("big", "--workers", "16", "--report-interval", "10", work_ms=20)
    listed = cluster.wait_registered({"small", "big"})
    small_port = next(b.port for b in listed if b.id == "small")

    codes = asyncio.run(_two_at_once(f"127.0.0.1:{small_port}"))
    assert codes == sorted([grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED], key=str)

    def small_load() -> float:
        return next(b.load for b in cluster.list_backends() if b.id == "small")

    wait_until(lambda: small_load() >= 1.0, 3, "the LB to see small as saturated")

    with LoadRun(cluster.lb_target, concurrency=12, pause=0) as load:
        load.wait_ok(200, what="load on an overloaded pair")
    report("overload", load)
    assert load.served_by["big"] > load.served_by["small"]


def test_backend_killed_while_lb_down(cluster: Cluster) -> None:
    """A backend killed while the LB is down: the client drops it from its memory."""
    policy = "least_load"
    start_three(cluster, policy)
    lb_port = cluster.lb.port  # type: ignore[union-attr]
    with LoadRun(cluster.lb_target, concurrency=4, pause=0.01) as load:
        load.wait_ok(60, what="load through the LB")
        cluster.lb.kill()  # type: ignore[union-attr]
        wait_until(lambda: load.via_memory >= 30, 20, "requests served while the LB is down")
        cluster.backends["b1"].kill()
        load.wait_ok(60, what="load without the LB and without b1")
        cluster.start_lb(policy, port=lb_port)
        cluster.wait_registered({"b2", "b3"}, timeout=10)
        back = load.via_lb
        wait_until(lambda: load.via_lb >= back + 60, 10, "the client to use the LB again")
    report("backend SIGKILL while LB down", load)
