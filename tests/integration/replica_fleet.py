"""Several ``lookaside lb`` replicas over one etcd, with backends, as real processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc

from lookaside.bench.etcd_cluster import EtcdCluster
from lookaside.client.admin import list_backends
from lookaside.procs import ServerProcess, stop_all
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import FAST_LEASES, wait_until


class Fleet:
    """LB replicas sharing ``etcd`` and backends registered with them."""

    def __init__(self, etcd: EtcdCluster, log_dir: Path) -> None:
        self.etcd = etcd
        self.log_dir = log_dir
        self.replicas: list[ServerProcess] = []
        self.backends: dict[str, ServerProcess] = {}

    def start_replicas(self, count: int, *extra: str) -> list[ServerProcess]:
        started = []
        for n in range(len(self.replicas), len(self.replicas) + count):
            args = ["lb", "--port", "0", "--policy", "round_robin", "--store", self.etcd.url]
            process = ServerProcess(f"lb{n}", [*args, *FAST_LEASES, *extra], self.log_dir)
            started.append(process.start())
        for process in started:
            process.wait_listening()
        self.replicas.extend(started)
        return started

    @staticmethod
    def target(*replicas: ServerProcess) -> str:
        return ",".join(f"127.0.0.1:{r.port}" for r in replicas)

    @property
    def all_targets(self) -> str:
        return self.target(*self.replicas)

    def start_backend(self, backend_id: str, lb: str, work_ms: float = 2) -> ServerProcess:
        args = ["backend", "--lb", lb, "--id", backend_id, "--work-ms", str(work_ms)]
        process = ServerProcess(backend_id, [*args, "--report-interval", "0.3"], self.log_dir)
        process.start().wait_listening()
        self.backends[backend_id] = process
        return process

    def live_ids(self, replica: ServerProcess) -> set[str]:
        """What ``replica`` lists (a slow answer on a busy machine is retried, not a loss)."""
        for attempt in range(3):
            try:
                reply = asyncio.run(list_backends(self.target(replica), timeout=5))
            except grpc.aio.AioRpcError as error:
                retry = error.code() in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
                if not retry or attempt == 2 or not replica.alive():
                    raise
                continue
            return {b.id for b in reply.backends}
        raise AssertionError("unreachable")

    def wait_everywhere(self, ids: set[str], timeout: float = 20.0) -> None:
        for replica in self.replicas:
            if replica.alive():
                wait_until(
                    lambda r=replica: self.live_ids(r) == ids, timeout, f"{ids} at {replica.name}"
                )

    def register(self, replica: ServerProcess, backend_id: str, port: int) -> pb.RegisterResponse:
        """One RegisterBackend call, as a backend would make it; raises ``grpc.RpcError``."""

        async def call() -> pb.RegisterResponse:
            async with grpc.aio.insecure_channel(self.target(replica)) as channel:
                stub = pb_grpc.LoadBalancerStub(channel)
                info = pb.BackendInfo(id=backend_id, address="127.0.0.1", port=port)
                return await stub.RegisterBackend(info, timeout=5)

        return asyncio.run(call())

    def replica_this_process_uses(self) -> ServerProcess | None:
        """The live replica this test process has an established TCP connection to.

        A ``LookasideClient`` pins one replica of its list at random; a fault test
        that must hit the client's replica looks it up here: this process's sockets
        (``/proc/self/fd``) matched to ``/proc/net/tcp`` by inode.
        """
        inodes = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/self/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        ports: set[int] = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError), open(table) as lines:
                for line in list(lines)[1:]:
                    fields = line.split()
                    if fields[3] == "01" and fields[9] in inodes:  # ESTABLISHED, ours
                        ports.add(int(fields[2].rsplit(":", 1)[1], 16))
        used = [r for r in self.replicas if r.alive() and r.port in ports]
        return used[0] if len(used) == 1 else None

    def registered_at(self, replica: ServerProcess) -> int:
        """How many backends registered through ``replica`` (from its log)."""
        return replica.log_text().count("registered id=")

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_dir.glob("*.log"))

    def stop(self) -> None:
        stop_all([*self.backends.values(), *self.replicas])


def seconds_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """How long until ``condition()`` held (fails the test after ``timeout``)."""
    start = time.monotonic()
    wait_until(condition, timeout, what)
    return time.monotonic() - start


def running_fleet(etcd: EtcdCluster, directory: Path) -> Iterator[Fleet]:
    """For a fixture: a fleet over ``etcd``, every process stopped afterwards."""
    fleet = Fleet(etcd, directory / "logs")
    try:
        yield fleet
    finally:
        fleet.stop()
