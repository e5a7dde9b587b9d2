"""A refused duplicate never undoes the live backend: lease identity, end to end.

The choreography that used to remove a live backend for about half a second:
``b1`` is live; a second process starts with id ``b1`` on another port and is
refused (``ALREADY_EXISTS``); when that second process stops, it must not
take the live ``b1`` with it. Both run on 127.0.0.1, so the seed-era rule
(ownership by caller IP) cannot tell them apart; the lease id can.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from lookaside.lb.server import LbConfig, LbServer
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_identity import reports, status_of


class Presence:
    """Polls ListBackends on a thread and counts every poll that missed ``backend_id``."""

    def __init__(self, lb_target: str, backend_id: str, port: int) -> None:
        self.backend_id, self.port = backend_id, port
        self.polls = self.missing = self.moved = 0
        self._stop = threading.Event()
        self._channel = grpc.insecure_channel(lb_target)
        self._stub = pb_grpc.LoadBalancerStub(self._channel)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005) and self.polls < 20_000:
            reply = self._stub.ListBackends(pb.ListBackendsRequest(), timeout=5)
            found = [b for b in reply.backends if b.id == self.backend_id]
            self.polls += 1
            if not found:
                self.missing += 1
            elif found[0].port != self.port:
                self.moved += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._channel.close()


def test_a_refused_duplicate_that_stops_never_removes_the_live_backend(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.start_lb("round_robin")
    live = cluster.start_backend("b1")
    cluster.wait_registered({"b1"})
    presence = Presence(cluster.lb_target, "b1", live.port)
    try:
        duplicate = ServerProcess(
            "b1-duplicate",
            ["backend", "--lb", cluster.lb_target, "--id", "b1", "--report-interval", "0.3"],
            tmp_path,
        ).start()
        duplicate.wait_listening()
        assert duplicate.port != live.port
        wait_until(lambda: "ALREADY_EXISTS" in duplicate.log_text(), 10, "the refusal")
        assert duplicate.stop() == 0
        assert "never held a lease" in duplicate.log_text()
        after = presence.polls
        wait_until(lambda: presence.polls >= after + 100, 20, "100 polls after it stopped")
    finally:
        presence.stop()
    assert presence.missing == 0 and presence.moved == 0, (
        f"b1 missing in {presence.missing}, moved in {presence.moved} of {presence.polls} polls"
    )
    assert live.alive()


# --- the lease rules over the wire, one LB in this process ---------------------------


@pytest.fixture
async def lb() -> AsyncIterator[tuple[LbServer, pb_grpc.LoadBalancerStub]]:
    server = LbServer(LbConfig(host="127.0.0.1", port=0, policy="round_robin"))
    port = await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield server, pb_grpc.LoadBalancerStub(channel)
    await server.stop(0)


B1 = pb.BackendInfo(id="b1", address="127.0.0.1", port=9001)
DENIED = grpc.StatusCode.PERMISSION_DENIED


async def test_calls_naming_another_lease_change_nothing(
    lb: tuple[LbServer, pb_grpc.LoadBalancerStub],
) -> None:
    server, stub = lb
    first = await stub.RegisterBackend(B1, timeout=5)
    assert len(first.lease_id) == 32
    assert (await stub.RegisterBackend(B1, timeout=5)).lease_id == first.lease_id  # renewal
    elsewhere = pb.BackendInfo(id="b1", address="127.0.0.1", port=9002)
    assert await status_of(stub.RegisterBackend(elsewhere, timeout=5)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )

    bogus = "0" * 32
    fake = pb.LoadReport(id="b1", load=99.0, lease_id=bogus)
    assert await status_of(stub.ReportLoad(fake, timeout=5)) == DENIED
    assert await status_of(stub.StreamLoad(reports(fake), timeout=5)) == DENIED
    leave = pb.DeregisterRequest(id="b1", lease_id=bogus)
    assert await status_of(stub.Deregister(leave, timeout=5)) == DENIED
    endpoint = server.registry.get("b1")
    assert endpoint is not None and (endpoint.port, endpoint.load) == (9001, 0.0)

    own = pb.LoadReport(id="b1", load=0.5, lease_id=first.lease_id)
    await stub.ReportLoad(own, timeout=5)
    assert server.registry.get("b1").load == 0.5  # type: ignore[union-attr]


async def test_seed_era_calls_keep_the_caller_address_rule(
    lb: tuple[LbServer, pb_grpc.LoadBalancerStub],
) -> None:
    server, stub = lb
    first = await stub.RegisterBackend(B1, timeout=5)
    await stub.ReportLoad(pb.LoadReport(id="b1", load=0.25), timeout=5)  # no lease id
    await stub.Deregister(pb.DeregisterRequest(id="b1"), timeout=5)
    assert server.registry.get("b1") is None

    second = await stub.RegisterBackend(B1, timeout=5)
    assert second.lease_id != first.lease_id  # a new registration, a new lease
    stale = pb.DeregisterRequest(id="b1", lease_id=first.lease_id)
    assert await status_of(stub.Deregister(stale, timeout=5)) == DENIED
    assert server.registry.get("b1") is not None
    gone = pb.DeregisterRequest(id="ghost", lease_id=second.lease_id)
    assert await status_of(stub.Deregister(gone, timeout=5)) == grpc.StatusCode.NOT_FOUND


async def test_not_serving_keeps_the_lease_but_leaves_the_picks(
    lb: tuple[LbServer, pb_grpc.LoadBalancerStub],
) -> None:
    server, stub = lb
    lease = (await stub.RegisterBackend(B1, timeout=5)).lease_id
    pick = pb.ServerRequest(client_id="c")
    assert (await stub.GetBackend(pick, timeout=5)).id == "b1"
    for state in (pb.NOT_SERVING, pb.DRAINING):
        report = pb.LoadReport(id="b1", lease_id=lease, serving_state=state)
        await stub.ReportLoad(report, timeout=5)
        assert await status_of(stub.GetBackend(pick, timeout=5)) == grpc.StatusCode.UNAVAILABLE
        listed = (await stub.ListBackends(pb.ListBackendsRequest(), timeout=5)).backends
        assert [(b.id, b.serving_state) for b in listed] == [("b1", state)]
        assert server.balancer.live("compute") == ()
    back = pb.LoadReport(id="b1", lease_id=lease, serving_state=pb.SERVING)
    await stub.ReportLoad(back, timeout=5)
    assert (await stub.GetBackend(pick, timeout=5)).id == "b1"
    bad = pb.LoadReport(id="b1", lease_id=lease, serving_state=7)  # type: ignore[arg-type]
    assert await status_of(stub.ReportLoad(bad, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
