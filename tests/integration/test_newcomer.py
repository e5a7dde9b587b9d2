"""What a newcomer hit following the README, each fixed: one clear line and a non-zero exit
instead of tracebacks, wrapped ports, endless retries or misleading statuses."""

from __future__ import annotations

import asyncio
import glob
import json
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2

from lookaside import addresses, cli
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster, wait_until


def lookaside(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookaside", *args], capture_output=True, text=True, timeout=timeout
    )


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``lookaside ARGS`` in this process (for what fails or prints before serving)."""
    try:
        code = cli.main(list(args))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The command exits 2 with exactly one line on stderr; returns it."""
    code, _, err = in_process(capsys, *args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stderr and no traceback."""
    assert result.returncode != 0, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# 1. Ports out of range are refused, naming the flag.


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["lb", "--port", "99999"], "--port"),
        (["lb", "--port", "-5"], "--port"),
        (["lb", "--admin-port", "70000"], "--admin-port"),
        (["backend", "--port", "99999"], "--port"),
        (["backend", "--lb", "127.0.0.1:99999"], "--lb"),
        (["client", "x", "--lb", "127.0.0.1:99999"], "--lb"),
        (["client", "x", "--lb", "127.0.0.1:0"], "--lb"),
        (["scale-clients", "--lb", "127.0.0.1:65536"], "--lb"),
        (["status", "--lb", "127.0.0.1:-1"], "--lb"),
    ],
)
def test_ports_out_of_range_are_refused(
    capsys: pytest.CaptureFixture[str], args: list[str], flag: str
) -> None:
    line = refused(capsys, *args)
    assert f"error: {flag}:" in line
    assert "outside" in line


# 2. Binding errors: one line, non-zero exit, for the LB and the backend.


@pytest.mark.parametrize("command", ["lb", "backend"])
def test_a_port_in_use_is_one_line(command: str, taken_port: int) -> None:
    extra = ["--lb", "127.0.0.1:1"] if command == "backend" else []
    line = one_line(lookaside(command, "--port", str(taken_port), *extra))
    assert line == (
        f"lookaside {command}: cannot listen on 127.0.0.1:{taken_port}: address already in use"
    )


@pytest.mark.parametrize(
    ("host", "reason"),
    [("10.255.255.1", "cannot assign requested address"), ("not_a_host", "cannot resolve")],
)
def test_a_host_that_cannot_be_bound_is_one_line(host: str, reason: str) -> None:
    for command in (["lb"], ["backend", "--lb", "127.0.0.1:1"]):
        line = one_line(lookaside(*command, "--host", host, "--port", "0"))
        assert line.startswith(f"lookaside {command[0]}: cannot listen on {host}:0: {reason}")


# 3. Permanent errors end the process before it listens; transient ones keep retrying.


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--id", "x" * 300], "--id: is 300 characters"),
        (["--id", "my backend"], "--id:"),
        (["--id", "y" * 5000], "--id: is 5000 characters"),
        (["--service", "s" * 300], "--service: is 300 characters"),
        (["--lb", "nohost.invalid:50051"], "--lb: cannot resolve 'nohost.invalid'"),
    ],
)
def test_backend_refuses_what_retrying_cannot_heal(
    capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    line = refused(capsys, "backend", "--lb", "127.0.0.1:1", *flags)
    assert named in line
    assert len(line) < 300  # a 5,000-character id is not printed back whole


def test_backend_keeps_retrying_an_lb_that_is_down(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    args = ["backend", "--lb", f"127.0.0.1:{free}", "--id", "patient"]
    backend = ServerProcess("patient", args, tmp_path).start()
    try:
        backend.wait_listening()
        wait_until(lambda: backend.log_text().count("retry_in=") >= 2, 20, "two retries logged")
        assert backend.alive()  # UNAVAILABLE can heal: it keeps its back-off
    finally:
        backend.stop()


# 4. A backend's address given as the LB.


def test_client_and_scale_clients_name_a_backend_address(cluster: Cluster) -> None:
    cluster.start_lb()
    backend = cluster.start_backend("b1")
    target = f"127.0.0.1:{backend.port}"
    expected = f"{target} serves no lookaside.v1.LoadBalancer (is it a backend?)"
    assert one_line(lookaside("client", "hello", "--lb", target)) == f"lookaside client: {expected}"
    result = lookaside("scale-clients", "--lb", target, "-n", "2")
    assert one_line(result) == f"lookaside scale-clients: {expected}"


# 5. --lb without a port means lookaside's port.


def test_lb_without_a_port_means_50051() -> None:
    assert addresses.lb_target("127.0.0.1") == "127.0.0.1:50051"
    assert addresses.lb_target("[::1]") == "[::1]:50051"
    assert addresses.lb_target("a:7000,b") == "a:7000,b:50051"


# 6. Timeouts that can only fail.


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_client_refuses_a_timeout_that_cannot_succeed(
    capsys: pytest.CaptureFixture[str], timeout: str
) -> None:
    assert "--timeout" in refused(capsys, "client", "x", "--timeout", timeout)


# 7. An unknown service is NOT_FOUND at once, and --json errors are JSON.


def test_unknown_service_is_not_found_not_unavailable(cluster: Cluster) -> None:
    cluster.start_lb()
    cluster.start_backend("b1")
    cluster.wait_registered({"b1"})
    wait_until(lambda: get_backend_code(cluster.lb_target, "nosuch") == grpc.StatusCode.NOT_FOUND,
               15, "the LB to be up a whole TTL")  # fmt: skip
    line = one_line(lookaside("client", "x", "--lb", cluster.lb_target, "--service", "nosuch"))
    assert "NOT_FOUND" in line and "'nosuch'" in line
    assert "attempts" not in line  # not retried
    result = lookaside("client", "x", "--lb", cluster.lb_target, "--service", "nosuch", "--json")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["code"] == "NOT_FOUND"
    assert "nosuch" in document["error"]


def get_backend_code(lb_target: str, service: str) -> grpc.StatusCode:
    async def ask() -> grpc.StatusCode:
        async with aio.insecure_channel(lb_target) as channel:
            stub = pb_grpc.LoadBalancerStub(channel)
            try:
                await stub.GetBackend(pb.ServerRequest(service_name=service), timeout=5)
            except aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

    return asyncio.run(ask())


# 8. The demo.


@pytest.mark.parametrize("flag", ["--backends", "--requests"])
def test_demo_refuses_zero(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    assert f"{flag}: 0 must be at least 1" in refused(capsys, "demo", flag, "0")


def test_demo_leaves_no_folder_behind() -> None:
    pattern = f"{tempfile.gettempdir()}/lookaside-demo-*"
    before = set(glob.glob(pattern))
    result = lookaside("demo", "--backends", "1", "--requests", "2", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "requests per backend: backend1=2" in result.stdout
    assert set(glob.glob(pattern)) <= before


# 9. Help text.


def help_of(capsys: pytest.CaptureFixture[str], command: str) -> str:
    code, out, _ = in_process(capsys, command, "--help")
    assert code == 0
    return " ".join(out.split())  # argparse wraps lines


@pytest.mark.parametrize(
    "command", ["lb", "backend", "client", "demo", "status", "scale-servers", "scale-clients"]
)
def test_help_has_no_empty_defaults_or_unexplained_seed(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = help_of(capsys, command)
    assert "(default: )" not in text
    assert "(default: None)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)  # a default said twice
    assert "the seed" not in text and "seed's" not in text


def test_lb_help_names_every_rpc_the_client_token_guards(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of(capsys, "lb")
    for rpc in ("GetBackend", "ListBackends", "ReportClientStats", "WatchBackends"):
        assert rpc in text


def test_demo_policy_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert "how the LB chooses a backend" in help_of(capsys, "demo")


# 10. Reflection: v1 (grpcurl's first choice) as well as v1alpha, on the LB and backends.


async def reflected_services(target: str, version: str) -> set[str]:
    async with aio.insecure_channel(target) as channel:
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        reply = await call.read()
        assert reply is not grpc.aio.EOF
        return {service.name for service in reply.list_services_response.service}


def test_reflection_v1_and_v1alpha(cluster: Cluster) -> None:
    cluster.start_lb()
    backend = cluster.start_backend("r1")
    for version in ("v1", "v1alpha"):
        lb_services = asyncio.run(reflected_services(cluster.lb_target, version))
        assert "lookaside.v1.LoadBalancer" in lb_services
        backend_services = asyncio.run(reflected_services(f"127.0.0.1:{backend.port}", version))
        assert "lookaside.v1.Compute" in backend_services
