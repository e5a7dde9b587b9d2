"""The example in ``examples/pricing`` works as its README says, step by step.

Every step is the command the README gives, on free ports: an LB, a server
with ``BackendAgent``, a stock server behind ``lookaside agent``, and the
client on ``lookaside.sync_channel``. Both servers must price calls.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from lookaside.client.admin import list_backends
from lookaside.procs import ServerProcess, stop_all
from tests.integration.harness import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pricing"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Script:
    """``python SCRIPT ARGS`` in the example's folder, its output kept for the assertions."""

    def __init__(self, log_dir: Path, name: str, *args: str) -> None:
        self.log = log_dir / f"{name}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, name, *args], cwd=EXAMPLE, stdout=out, stderr=subprocess.STDOUT
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Script]]:
    scripts: list[Script] = []
    yield scripts
    for script in scripts:
        if script.proc.poll() is None:
            script.proc.kill()
            script.proc.wait()


def test_pricing_example_runs_as_the_readme_says(tmp_path: Path, started: list[Script]) -> None:
    lb = ServerProcess("lb", ["lb", "--port", "0"], tmp_path).start()
    sidecar: ServerProcess | None = None
    try:
        lb_port = lb.wait_listening()
        lb_target = f"127.0.0.1:{lb_port}"
        agent_port, plain_port = free_port(), free_port()
        started.append(
            Script(tmp_path, "server_agent.py", "--lb", lb_target, "--port", str(agent_port))
        )
        plain = Script(tmp_path, "server_plain.py", "--port", str(plain_port))
        started.append(plain)
        wait_until(lambda: "listening on" in plain.text(), 20, "the plain server")
        sidecar = ServerProcess(
            "sidecar",
            [
                "agent",
                "--lb",
                lb_target,
                "--target",
                f"127.0.0.1:{plain_port}",
                "--service",
                "pricing",
                "--id",
                "plain-1",
            ],
            tmp_path,
        ).start()

        def both_registered() -> bool:
            try:
                listed = asyncio.run(list_backends(lb_target, "pricing"))
            except grpc.RpcError:
                return False
            return {b.id for b in listed.backends} == {"agent-1", "plain-1"}

        wait_until(both_registered, 30, "both pricing servers registered")
        client = subprocess.run(
            [sys.executable, "client.py", "--lb", lb_target, "--calls", "10", "apple", "3"],
            cwd=EXAMPLE,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.startswith("3 x apple = 1.35"), client.stdout
        served = re.findall(r"(\d+) call\(s\) priced by (\S+)", client.stdout)
        counts = {name: int(n) for n, name in served}
        assert set(counts) == {"agent-1", "plain-1"}, client.stdout
        assert sum(counts.values()) == 10

        unknown = subprocess.run(
            [sys.executable, "client.py", "--lb", lb_target, "kiwi"],
            cwd=EXAMPLE,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unknown.returncode != 0
        assert unknown.stderr.strip() == "error: NOT_FOUND: unknown sku 'kiwi'", unknown.stderr
    finally:
        for script in started:
            assert script.stop() == 0, script.text()
        stop_all([p for p in (sidecar, lb) if p is not None])
