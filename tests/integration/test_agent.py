"""A user's own Echo service behind ``lookaside.BackendAgent``: aio and blocking servers.

Real processes on loopback: an LB (``lookaside lb``) and the Echo server of
``tests.integration.agent_echo``. Backends are picked with GetBackend /
ListBackends and called with plain generated stubs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from xds.data.orca.v3 import orca_load_report_pb2 as orca_pb
from xds.service.orca.v3 import orca_pb2 as orca_service_pb

from lookaside.v1 import load_balancer_pb2 as pb
from tests.integration import userprocs
from tests.integration.h2_grpc import unary_call
from tests.integration.harness import Cluster, wait_until
from tests.integration.userprocs import (
    ECHO,
    FLIP_TIMEOUT,
    ModuleProcess,
    agent_echo,
    backends,
    echo_stub,
    lb_stub,
    pick,
    say,
    serving_state,
)
from tests.userservice import echo_pb2 as echo_pb

lb = userprocs.lb  # the LB fixture, shared with the other user-service tests


@pytest.fixture(params=["aio", "sync"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def echo(cluster: Cluster, lb: grpc.Channel, mode: str, tmp_path: Path) -> Iterator[ModuleProcess]:
    process = agent_echo(f"echo-{mode}", cluster.lb_target, tmp_path, mode)
    try:
        wait_until(lambda: f"echo-{mode}" in backends(lb_stub(lb)), 20, "registration")
        yield process
    finally:
        process.stop()


def target_of(info: pb.BackendInfo) -> str:
    return f"{info.address}:{info.port}"


def test_all_four_call_types_reach_the_picked_backend(
    lb: grpc.Channel, echo: ModuleProcess, mode: str
) -> None:
    info = pick(lb_stub(lb))
    assert info is not None and info.id == f"echo-{mode}" and info.port == echo.port
    with grpc.insecure_channel(target_of(info)) as channel:
        stub = echo_stub(channel)
        assert stub.Say(echo_pb.EchoRequest(text="a"), timeout=5).served_by == info.id
        counted = [r.text for r in stub.Count(echo_pb.EchoRequest(text="c", count=3), timeout=5)]
        assert counted == ["c-0", "c-1", "c-2"]
        texts = iter([echo_pb.EchoRequest(text="x"), echo_pb.EchoRequest(text="y")])
        assert stub.Gather(texts, timeout=5).text == "x+y"
        chat = stub.Chat(iter([echo_pb.EchoRequest(text="p"), echo_pb.EchoRequest(text="q")]))
        assert [r.text for r in chat] == ["p", "q"]
        with pytest.raises(grpc.RpcError) as failed:
            stub.Say(echo_pb.EchoRequest(text="f", fail_code=13), timeout=5)
        assert failed.value.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]

    # The interceptor counted them: the LB's view of the backend shows calls and errors.
    def reported() -> bool:
        report = backends(lb_stub(lb))[info.id].last_report
        return report.rps_fractional > 0 and report.eps > 0 and report.latency_ms > 0

    wait_until(reported, 10, "rps, eps and latency in the LB's last report")


def test_orca_trailer_on_every_call(echo: ModuleProcess) -> None:
    """Read with a plain HTTP/2 client: grpcio's clients keep this trailer to themselves."""
    say_method = "/userservice.v1.Echo/Say"
    reports: list[orca_pb.OrcaLoadReport] = []

    def trailer_shows_rps() -> bool:
        request = echo_pb.EchoRequest(text="t").SerializeToString()
        reply, trailers = unary_call("127.0.0.1", echo.port, say_method, request)
        assert echo_pb.EchoReply.FromString(reply).text == "t"
        assert trailers["grpc-status"] == b"0"
        reports.append(orca_pb.OrcaLoadReport.FromString(trailers["endpoint-load-metrics-bin"]))
        return reports[-1].rps_fractional > 0

    wait_until(trailer_shows_rps, 10, "an ORCA trailer with requests per second")
    assert "requests_in_flight" in reports[-1].named_metrics
    assert 0 <= reports[-1].application_utilization <= 1
    # An aborted call carries the trailer too.
    failing = echo_pb.EchoRequest(text="f", fail_code=5).SerializeToString()
    _, trailers = unary_call("127.0.0.1", echo.port, say_method, failing)
    assert trailers["grpc-status"] == b"5"
    orca_pb.OrcaLoadReport.FromString(trailers["endpoint-load-metrics-bin"])


def test_orca_out_of_band_stream(echo: ModuleProcess) -> None:
    request = orca_service_pb.OrcaLoadReportRequest()
    request.report_interval.FromMilliseconds(200)
    with grpc.insecure_channel(f"127.0.0.1:{echo.port}") as channel:
        say(f"127.0.0.1:{echo.port}")
        stream = channel.unary_stream(
            "/xds.service.orca.v3.OpenRcaService/StreamCoreMetrics",
            request_serializer=orca_service_pb.OrcaLoadReportRequest.SerializeToString,
            response_deserializer=orca_pb.OrcaLoadReport.FromString,
        )(request, timeout=10)
        first, second = next(stream), next(stream)
        stream.cancel()
    for report in (first, second):
        assert {"requests_in_flight", "latency_ms"} <= set(report.named_metrics)
        assert report.cpu_utilization >= 0


def test_health_flip_is_followed_both_ways(
    lb: grpc.Channel, echo: ModuleProcess, mode: str
) -> None:
    stub, backend_id = lb_stub(lb), f"echo-{mode}"
    echo.signal(signal.SIGUSR1)
    started = time.monotonic()
    wait_until(lambda: pick(stub) is None, FLIP_TIMEOUT, "NOT_SERVING to stop picks")
    took_out = time.monotonic() - started
    assert serving_state(stub, backend_id) == pb.NOT_SERVING  # still registered
    echo.signal(signal.SIGUSR2)
    started = time.monotonic()
    wait_until(lambda: pick(stub) is not None, FLIP_TIMEOUT, "SERVING to bring it back")
    print(
        f"health flip followed: out in {took_out:.3f}s, back in {time.monotonic() - started:.3f}s"
    )
    assert serving_state(stub, backend_id) == pb.SERVING


def test_stop_deregisters_and_lets_calls_in_flight_finish(
    lb: grpc.Channel, echo: ModuleProcess, mode: str
) -> None:
    stub, backend_id = lb_stub(lb), f"echo-{mode}"
    target = f"127.0.0.1:{echo.port}"
    replies: list[echo_pb.EchoReply] = []
    slow = threading.Thread(target=lambda: replies.append(say(target, "slow", delay_ms=1500)))
    slow.start()
    wait_until(
        lambda: backends(stub)[backend_id].last_report.requests_in_flight >= 1,
        10,
        "the slow call to be in flight",
    )
    echo.signal(signal.SIGTERM)
    wait_until(lambda: backend_id not in backends(stub), 5, "deregistration")
    slow.join(15)
    assert [r.text for r in replies] == ["slow"]
    assert echo.wait(15) == 0
    assert "agent stopped" in echo.log_text()


def test_lb_sees_in_flight_and_latency(lb: grpc.Channel, echo: ModuleProcess, mode: str) -> None:
    stub, backend_id = lb_stub(lb), f"echo-{mode}"
    target = f"127.0.0.1:{echo.port}"
    threads = [
        threading.Thread(target=say, args=(target, "w"), kwargs={"delay_ms": 800}) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: backends(stub)[backend_id].last_report.requests_in_flight == 2,
        10,
        "two calls in flight in the LB's view",
    )
    for thread in threads:
        thread.join(10)
    wait_until(
        lambda: backends(stub)[backend_id].last_report.latency_ms >= 700,
        10,
        "the latency EWMA to show the slow calls",
    )
    assert backends(stub)[backend_id].service_name == ECHO
