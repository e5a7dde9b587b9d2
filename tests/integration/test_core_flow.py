"""The seed's flow end to end, with real processes on loopback."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lookaside.client.lookaside_client import LookasideClient
from lookaside.procs import lookaside_command
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster


async def _serve_many(lb_target: str, count: int) -> list[str]:
    async with LookasideClient(lb_target) as client:
        served = []
        for i in range(count):
            reply = await client.compute(f"hello-{i}")
            assert reply.result == f"hello-{i}"[::-1]
            served.append(reply.backend_id)
        return served


def test_client_cli_prints_result_and_backend(cluster: Cluster) -> None:
    cluster.start_lb("least_load")
    cluster.start_backend("b1")
    cluster.wait_registered({"b1"})
    out = subprocess.run(
        [*lookaside_command(), "client", "--lb", cluster.lb_target, "--json", "hello"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    reply = json.loads(out.stdout)
    assert reply["result"] == "olleh"
    assert reply["backend_id"] == "b1"
    assert reply["latency_ms"] > 0


def test_round_robin_spreads_30_requests_evenly(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    for name in ("b1", "b2", "b3"):
        cluster.start_backend(name)
    cluster.wait_registered({"b1", "b2", "b3"})
    usage = Counter(asyncio.run(_serve_many(cluster.lb_target, 30)))
    assert usage == {"b1": 10, "b2": 10, "b3": 10}


def test_pick_first_sticks_then_moves_on_after_sigkill(cluster: Cluster) -> None:
    cluster.start_lb("pick_first")
    first = cluster.start_backend("first")
    cluster.wait_registered({"first"})
    cluster.start_backend("second")
    cluster.wait_registered({"first", "second"})
    assert set(asyncio.run(_serve_many(cluster.lb_target, 10))) == {"first"}
    first.kill()
    # The client fails over at once; the LB drops "first" when its stream breaks.
    assert set(asyncio.run(_serve_many(cluster.lb_target, 10))) == {"second"}


def test_killed_backend_is_no_longer_handed_out_within_ttl(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    victim = cluster.start_backend("victim")
    cluster.start_backend("survivor")
    cluster.wait_registered({"victim", "survivor"})
    victim.kill()
    deadline = time.monotonic() + 1.5  # the LB's --ttl in the harness
    while "victim" in cluster.live_ids():
        assert time.monotonic() < deadline, "victim still handed out after its TTL"
        time.sleep(0.05)
    assert cluster.live_ids() == {"survivor"}


def test_backends_reregister_after_lb_restart(cluster: Cluster) -> None:
    lb = cluster.start_lb("round_robin")
    port = lb.port
    cluster.start_backend("b1")
    cluster.start_backend("b2")
    cluster.wait_registered({"b1", "b2"})
    lb.kill()
    cluster.start_lb("round_robin", port=port)
    cluster.wait_registered({"b1", "b2"}, timeout=20)
    assert Counter(asyncio.run(_serve_many(cluster.lb_target, 4))) == {"b1": 2, "b2": 2}


def test_sigterm_deregisters_and_exits_zero(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    leaving = cluster.start_backend("leaving")
    cluster.start_backend("staying")
    cluster.wait_registered({"leaving", "staying"})
    leaving.signal(signal.SIGTERM)
    assert leaving.wait(15) == 0
    assert cluster.live_ids() == {"staying"}
    assert "deregistered id=leaving" in cluster.lb.log_text()  # type: ignore[union-attr]


def test_health_serving_and_no_backend_is_unavailable(cluster: Cluster) -> None:
    cluster.start_lb("least_load")

    async def check() -> None:
        async with grpc.aio.insecure_channel(cluster.lb_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            lb = pb_grpc.LoadBalancerStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await lb.GetBackend(pb.ServerRequest(service_name="payments"), timeout=5)
            # UNAVAILABLE while the LB is younger than a TTL, then NOT_FOUND (unknown service).
            assert caught.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
            assert "payments" in (caught.value.details() or "")

    asyncio.run(check())


def test_get_backend_honours_service_name(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    cluster.start_backend("c1")
    cluster.start_backend("o1", "--service", "other")
    cluster.wait_registered({"c1"})

    async def pick(service: str) -> str:
        async with grpc.aio.insecure_channel(cluster.lb_target) as channel:
            lb = pb_grpc.LoadBalancerStub(channel)
            for _ in range(50):
                try:
                    reply = await lb.GetBackend(pb.ServerRequest(service_name=service), timeout=5)
                    return reply.id
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)
            raise AssertionError(f"no backend for {service}")

    assert asyncio.run(pick("")) == "c1"
    assert asyncio.run(pick("compute")) == "c1"
    assert asyncio.run(pick("other")) == "o1"
