"""The fast path: clients subscribe to the backend set and pick locally."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

import grpc
import pytest

from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.client.lookaside_client import LookasideClient
from lookaside.lb.server import LbConfig, LbServer
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_watch_sends_the_set_then_every_change() -> None:
    server = LbServer(LbConfig(port=0, policy="p2c", watch_min_gap=0.01))
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            lb = pb_grpc.LoadBalancerStub(channel)
            stream = lb.WatchBackends(pb.WatchRequest(client_id="w"))
            first = await stream.read()
            assert first.service_name == "compute" and first.policy == "p2c"
            assert list(first.backends) == []
            await lb.RegisterBackend(pb.BackendInfo(id="a", address="127.0.0.1", port=9000))
            joined = await stream.read()
            assert [b.id for b in joined.backends] == ["a"] and joined.version > first.version
            await lb.ReportLoad(pb.LoadReport(id="a", load=0.5, rps_fractional=12))
            reported = await stream.read()
            assert reported.backends[0].load == 0.5
            assert reported.backends[0].last_report.rps_fractional == 12
            await lb.Deregister(pb.DeregisterRequest(id="a"))
            left = await stream.read()
            assert list(left.backends) == []
            stream.cancel()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await lb.WatchBackends(pb.WatchRequest(service_name="bad name")).read()
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await server.stop(0)


def test_fast_path_picks_locally_and_survives_the_lb(cluster: Cluster) -> None:
    cluster.start_lb("round_robin", "--watch-min-gap", "0.05")
    for name in ("b1", "b2", "b3"):
        cluster.start_backend(name)
    cluster.wait_registered({"b1", "b2", "b3"})

    async def run() -> tuple[Counter[str], Counter[str], set[str]]:
        async with LookasideClient(
            cluster.lb_target, config=replace(LOOKASIDE_CLIENT_DEFAULTS, fast_path=True)
        ) as client:
            await client.wait_fast_path()
            await _until(lambda: client.fast_path_size() == 3, 5, "three backends")
            spread = Counter([(await client.compute(f"r{i}")).backend_id for i in range(30)])
            cluster.start_backend("b4")
            await _until(lambda: client.fast_path_size() == 4, 10, "b4 in the local set")
            with_b4 = Counter([(await client.compute(f"s{i}")).backend_id for i in range(40)])
            cluster.lb.kill()  # type: ignore[union-attr]
            replies = [await client.compute(f"t{i}") for i in range(20)]
            assert all(r.result == f"t{i}"[::-1] for i, r in enumerate(replies))
            return spread, with_b4, {r.backend_id for r in replies}

    spread, with_b4, without_lb = asyncio.run(run())
    assert spread == {"b1": 10, "b2": 10, "b3": 10}
    assert with_b4 == {"b1": 10, "b2": 10, "b3": 10, "b4": 10}
    assert without_lb == {"b1", "b2", "b3", "b4"}
