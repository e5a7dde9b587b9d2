"""Echo servers (stock grpcio, no lookaside code) registered with a real LB process.

Each server is ``python -m tests.userservice.server`` in a process of its own;
its registration with the LB (RegisterBackend, then a StreamLoad stream) is
kept by a :class:`~lookaside.backend.reporter.LoadReporter` in the test's
event loop, as an agent next to the server would. Killing a server and
stopping its reporter is what a SIGKILLed server with its agent looks like.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from grpc import aio

from lookaside.backend.reporter import LoadReporter
from lookaside.channels import dial
from lookaside.v1 import load_balancer_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "echo"
LISTENING = re.compile(r"listening on (\S+):(\d+)")


class EchoServer:
    """One Echo server process."""

    def __init__(self, server_id: str, log_dir: Path) -> None:
        self.id = server_id
        self.log_path = log_dir / f"{server_id}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.userservice.server",
                    "--port",
                    "0",
                    "--id",
                    server_id,
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.port = 0

    async def wait_listening(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                self.port = int(match.group(2))
                return self.port
            assert self.process.poll() is None, self.log_path.read_text()
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.id} not listening after {timeout}s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class EchoFleet:
    """Echo servers, each registered with the LB at ``lb_target`` as service ``echo``."""

    def __init__(self, lb_target: str, log_dir: Path) -> None:
        self.lb_target = lb_target
        self.log_dir = log_dir
        self.servers: dict[str, EchoServer] = {}
        self.reporters: dict[str, LoadReporter] = {}
        self._lb: aio.Channel | None = None

    async def start(self, *ids: str) -> None:
        if self._lb is None:
            self._lb = dial(self.lb_target)
        started = [EchoServer(server_id, self.log_dir) for server_id in ids]
        for server in started:
            await server.wait_listening()
            self.servers[server.id] = server
            registration = pb.BackendInfo(
                id=server.id, address="127.0.0.1", port=server.port, service_name=SERVICE
            )
            reporter = LoadReporter(
                self._lb,
                registration,
                lambda server_id=server.id: pb.LoadReport(id=server_id, load=0.0),  # type: ignore[misc]
                interval=0.3,
            )
            reporter.start()
            self.reporters[server.id] = reporter
        await asyncio.gather(
            *(asyncio.wait_for(self.reporters[s.id].registered.wait(), 10) for s in started)
        )

    async def kill(self, server_id: str) -> None:
        """SIGKILL the server; its registration goes too (as with an agent beside it)."""
        self.servers[server_id].kill()
        reporter = self.reporters.pop(server_id)
        await reporter.stop()

    async def close(self) -> None:
        await asyncio.gather(*(r.stop() for r in self.reporters.values()))
        self.reporters.clear()
        for server in self.servers.values():
            server.stop()
        if self._lb is not None:
            await self._lb.close(None)
