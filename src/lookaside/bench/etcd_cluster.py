"""A real etcd (one member or several) on loopback, for the lab and the tests.

Each member gets free ports, its own temporary ``--data-dir`` and fast test
timings (``--heartbeat-interval 10 --election-timeout 100``), logs to a file,
and is stopped with the cluster. Members can be killed, paused (SIGSTOP),
resumed and restarted on the same ports and data, to play store outages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ETCD = os.environ.get("LOOKASIDE_ETCD", "/usr/bin/etcd")


def etcd_binary() -> str | None:
    """The etcd executable, or None when this machine has none."""
    if os.path.isfile(ETCD) and os.access(ETCD, os.X_OK):
        return ETCD
    return shutil.which("etcd")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MemberExited(RuntimeError):
    """A member that should run exited (at start: most often a port taken meanwhile)."""


class EtcdMember:
    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.data_dir = directory / f"{name}.data"
        self.log_path = directory / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.new_ports()

    def new_ports(self) -> None:
        """Free ports now; another process may still take one before etcd binds it."""
        self.client_port = _free_port()
        self.peer_port = _free_port()

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, binary: str, initial_cluster: str, state: str) -> None:
        args = [
            binary,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", state,
            "--heartbeat-interval", "10",
            "--election-timeout", "100",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=0.5) as reply:
                return b'"true"' in reply.read()
        except OSError:
            return False

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def metrics(self) -> dict[str, float]:
        """The member's Prometheus counters, summed over labels (name -> value)."""
        with urllib.request.urlopen(f"{self.client_url}/metrics", timeout=2) as reply:
            text = reply.read().decode()
        totals: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.partition("{")[0]
            with contextlib.suppress(ValueError):
                totals[name] = totals.get(name, 0.0) + float(value)
            if 'grpc_method="LeaseKeepAlive"' in name_labels and name.startswith(
                "grpc_server_msg_received_total"
            ):
                keepalives = totals.get("lease_keepalives_received", 0.0)
                totals["lease_keepalives_received"] = keepalives + float(value)
        return totals


class EtcdCluster:
    """``size`` etcd members on loopback; ``url`` is the ``--store`` value naming them all."""

    def __init__(self, directory: Path, size: int = 1) -> None:
        binary = etcd_binary()
        if binary is None:
            raise FileNotFoundError(f"no etcd at {ETCD} nor on PATH (Debian: etcd-server)")
        self.binary = binary
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.members = [EtcdMember(f"m{n}", self.directory) for n in range(size)]
        self._initial = ""

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{m.client_port}" for m in self.members)

    def start(self, timeout: float = 30.0, attempts: int = 3) -> EtcdCluster:
        """Every member up and healthy. A member that exits at start (a port taken between
        choosing and binding it) makes the whole cluster start again on new ports: a
        cluster short of a member would lose its quorum to the first fault a test plays."""
        for attempt in range(attempts):
            self._initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
            for member in self.members:
                member.start(self.binary, self._initial, "new")
            try:
                self.wait_healthy(timeout, required=self.members)
                return self
            except MemberExited:
                self.stop()
                if attempt == attempts - 1:
                    raise
                for member in self.members:
                    shutil.rmtree(member.data_dir, ignore_errors=True)
                    member.new_ports()
        return self

    def _logs(self) -> str:
        return "\n".join(
            m.log_path.read_text(errors="replace")[-1500:]
            for m in self.members
            if m.log_path.exists()
        )

    def wait_healthy(self, timeout: float = 30.0, required: Sequence[EtcdMember] = ()) -> None:
        """Every running member healthy; each of ``required`` must be running."""
        deadline = time.monotonic() + timeout
        while True:
            exited = [m.name for m in required if not m.alive()]
            if exited:
                raise MemberExited(f"etcd member(s) {exited} exited:\n{self._logs()}")
            if all(m.healthy() for m in self.members if m.alive()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"etcd not healthy after {timeout}s:\n{self._logs()}")
            time.sleep(0.05)

    def restart(self, member: EtcdMember, timeout: float = 30.0) -> None:
        """Start a killed member again on its ports and data."""
        member.start(self.binary, self._initial, "existing")
        self.wait_healthy(timeout, required=[member])

    def stop(self) -> None:
        for member in self.members:
            member.signal(signal.SIGCONT)
            member.signal(signal.SIGTERM)
        for member in self.members:
            if member.proc is not None:
                try:
                    member.proc.wait(10)
                except subprocess.TimeoutExpired:
                    member.kill()

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
