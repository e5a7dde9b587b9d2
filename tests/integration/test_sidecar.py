"""``lookaside agent`` in front of servers that know nothing of lookaside.

Real processes on loopback: an LB, the stock grpcio Echo server of
``tests.userservice.server`` (health, no lookaside code; SIGUSR1 flips it to
NOT_SERVING, SIGUSR2 back) or the Echo server behind ``BackendAgent`` (which
serves ORCA), and the sidecar. Backends are picked with GetBackend /
ListBackends / WatchBackends and called with plain stubs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from tests.integration import userprocs
from tests.integration.harness import Cluster, wait_until
from tests.integration.userprocs import (
    ECHO,
    FLIP_TIMEOUT,
    ModuleProcess,
    agent_echo,
    backends,
    echo_server,
    lb_stub,
    pick,
    say,
    serving_state,
)

lb = userprocs.lb  # the LB fixture, shared with the other user-service tests


@pytest.fixture
def target(tmp_path: Path) -> Iterator[ModuleProcess]:
    process = echo_server("s1", tmp_path)
    try:
        yield process
    finally:
        process.stop()


def start_sidecar(cluster: Cluster, target_port: int, log_dir: Path, *extra: str) -> ServerProcess:
    args = [
        "agent",
        "--lb",
        cluster.lb_target,
        "--target",
        f"127.0.0.1:{target_port}",
        "--service",
        ECHO,
        "--report-interval",
        "0.3",
        *extra,
    ]
    return ServerProcess("sidecar", args, log_dir).start()


@pytest.fixture
def sidecar(
    cluster: Cluster, lb: grpc.Channel, target: ModuleProcess, tmp_path: Path
) -> Iterator[ServerProcess]:
    process = start_sidecar(cluster, target.port, tmp_path, "--id", "s1")
    try:
        wait_until(
            lambda: serving_state(lb_stub(lb), "s1") == pb.SERVING, 20, "s1 registered, SERVING"
        )
        yield process
    finally:
        process.stop()


class Watch:
    """A WatchBackends subscription read on a thread; ``sets`` holds the ids of each set."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.sets: list[list[str]] = []
        self._call = lb_stub(channel).WatchBackends(
            pb.WatchRequest(client_id="t", service_name=ECHO)
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for update in self._call:
                self.sets.append([b.id for b in update.backends])
        except grpc.RpcError:
            pass

    def latest(self) -> list[str] | None:
        return self.sets[-1] if self.sets else None

    def close(self) -> None:
        self._call.cancel()
        self._thread.join(5)


def test_registers_a_stock_server_and_clients_reach_it(
    lb: grpc.Channel, target: ModuleProcess, sidecar: ServerProcess
) -> None:
    info = pick(lb_stub(lb))
    assert info is not None and (info.id, info.port) == ("s1", target.port)
    assert say(f"{info.address}:{info.port}", "hello").served_by == "s1"
    assert serving_state(lb_stub(lb), "s1") == pb.SERVING


def test_health_flips_are_followed_by_picks_and_watches(
    lb: grpc.Channel, target: ModuleProcess, sidecar: ServerProcess
) -> None:
    stub = lb_stub(lb)
    watch = Watch(lb)
    try:
        wait_until(lambda: watch.latest() == ["s1"], 10, "the watch to show s1")
        target.signal(signal.SIGUSR1)
        wait_until(lambda: pick(stub) is None, FLIP_TIMEOUT, "NOT_SERVING to stop picks")
        wait_until(lambda: watch.latest() == [], FLIP_TIMEOUT, "the watch to drop s1")
        assert serving_state(stub, "s1") == pb.NOT_SERVING  # registered, lease kept
        target.signal(signal.SIGUSR2)
        wait_until(lambda: pick(stub) is not None, FLIP_TIMEOUT, "SERVING to bring s1 back")
        wait_until(lambda: watch.latest() == ["s1"], FLIP_TIMEOUT, "the watch to show s1 again")
    finally:
        watch.close()


def test_an_unreachable_target_stays_registered_but_is_not_handed_out(
    lb: grpc.Channel, target: ModuleProcess, sidecar: ServerProcess
) -> None:
    stub = lb_stub(lb)
    target.kill()
    wait_until(lambda: pick(stub) is None, FLIP_TIMEOUT, "a dead target to stop picks")
    assert serving_state(stub, "s1") == pb.NOT_SERVING
    assert sidecar.alive()


def test_a_hung_target_is_caught_by_the_liveness_check(
    lb: grpc.Channel, target: ModuleProcess, sidecar: ServerProcess
) -> None:
    stub = lb_stub(lb)
    target.signal(signal.SIGSTOP)  # the Watch stream stays open and silent
    try:
        wait_until(lambda: pick(stub) is None, 3 + FLIP_TIMEOUT, "a hung target to stop picks")
        assert serving_state(stub, "s1") == pb.NOT_SERVING
    finally:
        target.signal(signal.SIGCONT)
    wait_until(lambda: pick(stub) is not None, 3 + FLIP_TIMEOUT, "the target back in picks")


def test_sigterm_deregisters_and_exits_zero(
    lb: grpc.Channel, target: ModuleProcess, sidecar: ServerProcess
) -> None:
    sidecar.signal(signal.SIGTERM)
    assert sidecar.wait(15) == 0
    assert "s1" not in backends(lb_stub(lb))
    assert target.alive()  # the sidecar never stops the server it fronts
    assert "deregistered id=s1" in sidecar.log_text()


def test_load_comes_from_the_targets_orca_service(
    cluster: Cluster, lb: grpc.Channel, tmp_path: Path
) -> None:
    # The agent-backed Echo serves ORCA; it registers itself under another service name,
    # and the sidecar registers it again as Echo from outside.
    direct = agent_echo("direct", cluster.lb_target, tmp_path, service="direct")
    sidecar = start_sidecar(cluster, direct.port, tmp_path, "--id", "via-sidecar")
    try:
        stub = lb_stub(lb)
        wait_until(lambda: "via-sidecar" in backends(stub), 20, "the sidecar's registration")
        for _ in range(20):
            say(f"127.0.0.1:{direct.port}")

        def orca_reached_the_lb() -> bool:
            report = backends(stub)["via-sidecar"].last_report
            return report.rps_fractional > 0 and report.cpu_utilization > 0

        wait_until(orca_reached_the_lb, 15, "ORCA figures in the LB's view of the sidecar")
    finally:
        sidecar.stop()
        direct.stop()


def test_without_orca_it_reports_what_it_sees(
    lb: grpc.Channel, target: ModuleProcess, sidecar: ServerProcess
) -> None:
    wait_until(lambda: "no ORCA service" in sidecar.log_text(), 10, "the ORCA probe")
    report = backends(lb_stub(lb))["s1"].last_report
    assert report.serving_state == pb.SERVING and report.load == 0


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--target", "127.0.0.1:1", "--service", "s"], "--lb is required"),
        (["--lb", "127.0.0.1:1", "--service", "s"], "--target is required"),
        (["--lb", "127.0.0.1:1", "--target", "127.0.0.1:1"], "--service is required"),
        (["--lb", "nohost", "--target", "127.0.0.1:1", "--service", "s"], "--lb"),
        (["--lb", "127.0.0.1:1", "--target", "127.0.0.1:70000", "--service", "s"], "--target"),
        (["--lb", "127.0.0.1:1,nope", "--target", "127.0.0.1:1", "--service", "s"], "--lb"),
    ],
)
def test_bad_flags_get_one_line_and_a_non_zero_exit(args: list[str], says: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lookaside", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], done.stderr
