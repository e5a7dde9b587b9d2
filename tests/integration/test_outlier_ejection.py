"""Outlier ejection end to end: clients report failures, the LB stops handing the backend out."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from dataclasses import replace

import grpc
import pytest

from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.client.lookaside_client import LookasideClient
from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster


async def test_client_stats_eject_and_list_backends_says_so() -> None:
    config = LbConfig(port=0, policy="round_robin", outlier=OutlierConfig(consecutive_failures=3))
    server = LbServer(config)
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            lb = pb_grpc.LoadBalancerStub(channel)
            for i, name in enumerate(("a", "b", "c")):
                await lb.RegisterBackend(
                    pb.BackendInfo(id=name, address="127.0.0.1", port=9000 + i)
                )
            stats = pb.ClientStats(
                client_id="t",
                per_backend=[
                    pb.BackendCallStats(backend_id="b", calls_finished=3, calls_failed=3),
                    pb.BackendCallStats(backend_id="a", calls_finished=4, calls_failed=0),
                ],
            )
            reply = await lb.ReportClientStats(stats)
            assert reply.report_interval_seconds > 0
            listed = await lb.ListBackends(pb.ListBackendsRequest())
            assert {b.id: b.ejected for b in listed.backends} == {"a": False, "b": True, "c": False}
            picks = Counter([(await lb.GetBackend(pb.ServerRequest())).id for _ in range(10)])
            assert set(picks) == {"a", "c"}
            bad = pb.ClientStats(
                per_backend=[pb.BackendCallStats(backend_id="a", calls_finished=1, calls_failed=2)]
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await lb.ReportClientStats(bad)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await server.stop(0)


def test_hung_backend_is_ejected_before_its_lease_runs_out(cluster: Cluster) -> None:
    """A SIGSTOPped backend keeps its lease for 30 s, but clients see it time out."""
    cluster.start_lb(
        "round_robin",
        "--ttl",
        "30",
        "--report-interval",
        "1",
        "--outlier-consecutive-failures",
        "2",
        "--outlier-max-percent",
        "50",
    )
    for name in ("a", "b", "c"):
        cluster.start_backend(name)
    cluster.wait_registered({"a", "b", "c"})
    cluster.backends["b"].signal(signal.SIGSTOP)

    async def run() -> tuple[int, set[str]]:
        failures = 0
        async with LookasideClient(
            cluster.lb_target,
            config=replace(LOOKASIDE_CLIENT_DEFAULTS, timeout=5, attempt_timeout=0.3),
        ) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                for i in range(6):
                    try:
                        await client.compute(f"x{i}")
                    except Exception:
                        failures += 1
                await client.flush_stats()
                listed = {b.id for b in (await _list(cluster.lb_target)).backends if b.ejected}
                if "b" in listed:
                    served = {(await client.compute("after")).backend_id for _ in range(6)}
                    return failures, served
            raise AssertionError("b was never ejected")

    try:
        failures, served = asyncio.run(run())
    finally:
        cluster.backends["b"].signal(signal.SIGCONT)
    assert failures == 0
    assert served <= {"a", "c"}


async def _list(target: str) -> pb.ListBackendsResponse:
    async with grpc.aio.insecure_channel(target) as channel:
        return await pb_grpc.LoadBalancerStub(channel).ListBackends(pb.ListBackendsRequest())
