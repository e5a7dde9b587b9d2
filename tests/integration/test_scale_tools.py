"""``scale-servers`` and ``scale-clients``, the seed's two scale tools, with real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookaside.procs import lookaside_command
from tests.integration.harness import Cluster

IDS = {"backend1", "backend2", "backend3"}


def children(pid: int) -> set[int]:
    """Direct children of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:  # a thread may end between listing and reading
            text = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found |= {int(child) for child in text}
    return found


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for whoever reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def scale_servers(cluster: Cluster, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    cluster.start_lb("round_robin", "--ttl", "30")
    log = (tmp_path / "scale-servers.out").open("wb")
    process = subprocess.Popen(
        [*lookaside_command(), "scale-servers", "-n", "3", "--lb", cluster.lb_target,
         "--work-ms", "10", "--report-interval", "0.3", "--log-dir", str(tmp_path / "logs")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        log.close()


def test_scale_servers_registers_all_then_sigterm_stops_them(
    scale_servers: subprocess.Popen[bytes], cluster: Cluster, tmp_path: Path
) -> None:
    assert {b.id for b in cluster.wait_registered(IDS)} == IDS
    wait_until(lambda: len(children(scale_servers.pid)) == 3, 10, "three children")
    pids = children(scale_servers.pid)
    wait_until(lambda: "backend3" in (tmp_path / "scale-servers.out").read_text(), 10, "table")
    output = (tmp_path / "scale-servers.out").read_text()
    for pid in pids:
        assert str(pid) in output  # the table shows every child's pid

    scale_servers.send_signal(signal.SIGTERM)
    assert scale_servers.wait(20) == 0
    assert all(gone(pid) for pid in pids)
    # They stopped cleanly: each deregistered (the LB's TTL of 30 s would not drop them yet).
    assert cluster.live_ids() == set()


def test_parent_sigkill_leaves_no_orphans(
    scale_servers: subprocess.Popen[bytes], cluster: Cluster
) -> None:
    cluster.wait_registered(IDS)
    wait_until(lambda: len(children(scale_servers.pid)) == 3, 10, "three children")
    pids = children(scale_servers.pid)
    os.kill(scale_servers.pid, signal.SIGKILL)
    scale_servers.wait(10)
    wait_until(lambda: all(gone(pid) for pid in pids), 15, "every backend to exit")


def test_scale_clients_json(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_lb("round_robin")
    for backend_id in sorted(IDS):
        cluster.start_backend(backend_id, work_ms=20)
    cluster.wait_registered(IDS)
    path = tmp_path / "clients.json"
    done = subprocess.run(
        [*lookaside_command(), "scale-clients", "-n", "30", "--lb", cluster.lb_target,
         "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "throughput" in done.stdout and "p99" in done.stdout
    data = json.loads(path.read_text())
    assert data["lb"] == cluster.lb_target and data["clients"] == 30
    assert data["requests"] == data["completed"] == 30 and data["errors"] == 0
    assert data["backend_usage"] == {"backend1": 10, "backend2": 10, "backend3": 10}
    for part in ("response_ms", "lb_ms", "compute_ms"):
        assert set(data[part]) >= {"avg_ms", "min_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms"}
    assert data["compute_ms"]["min_ms"] >= 20.0
    assert data["throughput_rps"] == pytest.approx(30 / data["wall_s"])


def test_sigterm_while_waiting_for_registration_stops_everything(tmp_path: Path) -> None:
    # Nothing listens on the LB address, so the backends never register and the
    # command is still waiting for them when the signal comes.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        silent_lb = f"127.0.0.1:{probe.getsockname()[1]}"
    process = subprocess.Popen(
        [*lookaside_command(), "scale-servers", "-n", "2", "--lb", silent_lb,
         "--log-dir", str(tmp_path / "logs")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: len(children(process.pid)) == 2, 10, "two children")
        pids = children(process.pid)
        logs = tmp_path / "logs"
        wait_until(
            lambda: sum("listening on" in p.read_text() for p in logs.glob("*.log")) == 2,
            15,
            "both backends listening (and the command waiting for them to register)",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        assert all(gone(pid) for pid in pids)
    finally:
        if process.poll() is None:
            process.kill()
