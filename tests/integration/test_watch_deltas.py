"""WatchBackends deltas and the report budget against a real LB process."""

from __future__ import annotations

import asyncio
import time

import grpc

from lookaside.client.fast_path import BackendWatcher
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster


def info(backend_id: str, port: int) -> pb.BackendInfo:
    return pb.BackendInfo(id=backend_id, address="127.0.0.1", port=port)


class DeltaClient:
    """Applies a delta stream as the contract says; fails on any gap."""

    def __init__(self) -> None:
        self.backends: dict[str, pb.BackendInfo] = {}
        self.version: int | None = None
        self.fulls = 0
        self.deltas = 0

    def apply(self, message: pb.BackendSet) -> None:
        if message.full:
            self.fulls += 1
            self.backends = {b.id: b for b in message.backends}
        else:
            assert message.base_version == self.version, (message.base_version, self.version)
            self.deltas += 1
            for gone in message.removed_ids:
                del self.backends[gone]
            for backend in message.backends:
                self.backends[backend.id] = backend
        self.version = message.version


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_deltas_applied_in_order_match_the_lbs_set(cluster: Cluster) -> None:
    cluster.start_lb(
        "least_load", "--ttl", "30", "--report-interval", "1", "--watch-min-gap", "0.05"
    )

    async def run() -> None:
        async with grpc.aio.insecure_channel(cluster.lb_target) as channel:
            lb = pb_grpc.LoadBalancerStub(channel)
            for i in range(6):
                await lb.RegisterBackend(info(f"b{i}", 9100 + i))
            deltas = lb.WatchBackends(pb.WatchRequest(client_id="d", accept_deltas=True))
            legacy = lb.WatchBackends(pb.WatchRequest(client_id="l"))
            client = DeltaClient()
            client.apply(await deltas.read())
            assert client.fulls == 1 and sorted(client.backends) == [f"b{i}" for i in range(6)]
            first_legacy = await legacy.read()
            assert len(first_legacy.backends) == 6

            async def follow() -> None:
                while True:
                    client.apply(await deltas.read())

            follower = asyncio.ensure_future(follow())
            for round_ in range(5):
                for i in range(6):
                    await lb.ReportLoad(pb.LoadReport(id=f"b{i}", load=(i + round_) / 10))
            await lb.Deregister(pb.DeregisterRequest(id="b0"))
            await lb.RegisterBackend(info("b9", 9109))
            await lb.ReportLoad(pb.LoadReport(id="b3", load=0.75))
            listed = await lb.ListBackends(pb.ListBackendsRequest())
            want = {b.id: b.load for b in listed.backends}

            def caught_up() -> bool:
                return {i: b.load for i, b in client.backends.items()} == want

            await _until(caught_up, 10, "the delta stream to reach the LB's set")
            assert client.fulls == 1 and client.deltas >= 1  # never resynced
            # A delta is small: a legacy subscriber still gets the whole set each time.
            legacy_update = await legacy.read()
            assert legacy_update.full and len(legacy_update.backends) >= 5
            follower.cancel()
            legacy.cancel()

    asyncio.run(run())


def test_the_budget_slows_a_growing_fleet_and_renews_streams_without_eviction(
    cluster: Cluster,
) -> None:
    cluster.start_lb("least_load", "--ttl", "30", "--report-interval", "1", "--report-budget", "10")

    async def run() -> None:
        async with grpc.aio.insecure_channel(cluster.lb_target) as channel:
            lb = pb_grpc.LoadBalancerStub(channel)
            first = await lb.RegisterBackend(info("early", 9200))
            assert first.min_report_gap_seconds == 0.1  # 1 backend / 10 per second
            queue: asyncio.Queue[pb.LoadReport] = asyncio.Queue()

            async def reports():  # type: ignore[no-untyped-def]
                while True:
                    yield await queue.get()

            stream = lb.StreamLoad(reports())
            queue.put_nowait(pb.LoadReport(id="early", load=0.1))
            for i in range(20):  # the fleet grows twentyfold
                response = await lb.RegisterBackend(info(f"late{i}", 9300 + i))
            assert response.min_report_gap_seconds == 2.1  # 21 backends / 10 per second
            assert response.report_interval_seconds == 2.1
            queue.put_nowait(pb.LoadReport(id="early", load=0.2))
            ended = await asyncio.wait_for(stream, 10)  # the LB ends it with the new pace
            assert ended.min_report_gap_seconds == 2.1 and "renew" in ended.message
            listed = await lb.ListBackends(pb.ListBackendsRequest())
            assert "early" in {b.id for b in listed.backends}  # not marked down
            renewed = await lb.RegisterBackend(info("early", 9200))
            assert renewed.min_report_gap_seconds == 2.1 and "renewed" in renewed.message

    asyncio.run(run())


def test_a_set_over_the_message_limit_arrives_whole_in_parts(cluster: Cluster) -> None:
    cluster.start_lb("round_robin", "--ttl", "30", "--max-message-bytes", "2048")

    async def run() -> None:
        async with grpc.aio.insecure_channel(cluster.lb_target) as channel:
            lb = pb_grpc.LoadBalancerStub(channel)
            for i in range(80):  # about 40 bytes each: twice the limit
                await lb.RegisterBackend(info(f"backend-{i:03d}", 9400 + i))
            watch = channel.unary_stream(
                "/lookaside.v1.LoadBalancer/WatchBackends",
                request_serializer=None,
                response_deserializer=None,
            )
            raw = watch(pb.WatchRequest(client_id="w", accept_deltas=True).SerializeToString())
            client, parts = DeltaClient(), 0
            while True:
                data = await raw.read()
                assert isinstance(data, bytes) and len(data) <= 2048
                message = pb.BackendSet.FromString(data)
                client.apply(message)  # parts after the first are deltas on its version
                parts += 1
                if not message.continued:
                    break
            raw.cancel()
            assert parts > 1 and len(client.backends) == 80
            # The fast path gathers the parts and picks from the whole set.
            watcher = BackendWatcher(channel, "fast", "compute")
            watcher.start()
            await asyncio.wait_for(watcher.ready.wait(), 10)
            assert watcher.size == 80 and watcher.resubscriptions == 0
            await watcher.stop()

    asyncio.run(run())
