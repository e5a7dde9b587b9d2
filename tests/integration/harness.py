"""Start real ``lookaside`` processes on loopback for integration tests."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lookaside.admin import list_backends, wait_for_backends
from lookaside.procs import ServerProcess, stop_all
from lookaside.v1 import load_balancer_pb2 as pb

FAST_LEASES = ["--ttl", "1.5", "--report-interval", "0.3"]


class Cluster:
    """An LB and backends as child processes; everything is stopped at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.lb: ServerProcess | None = None
        self.backends: dict[str, ServerProcess] = {}
        self._lb_starts = 0

    @property
    def lb_target(self) -> str:
        assert self.lb is not None and self.lb.port, "start_lb first"
        return f"127.0.0.1:{self.lb.port}"

    def start_lb(self, policy: str = "round_robin", *extra: str, port: int = 0) -> ServerProcess:
        self._lb_starts += 1
        args = ["lb", "--port", str(port), "--policy", policy, *FAST_LEASES, *extra]
        self.lb = ServerProcess(f"lb{self._lb_starts}", args, self.log_dir).start()
        self.lb.wait_listening()
        return self.lb

    def start_backend(self, backend_id: str, *extra: str, work_ms: float = 0) -> ServerProcess:
        args = [
            "backend",
            "--lb",
            self.lb_target,
            "--id",
            backend_id,
            "--work-ms",
            str(work_ms),
            "--report-interval",
            "0.3",
            *extra,
        ]
        process = ServerProcess(backend_id, args, self.log_dir).start()
        process.wait_listening()
        self.backends[backend_id] = process
        return process

    def wait_registered(self, ids: set[str], timeout: float = 20.0) -> list[pb.BackendInfo]:
        return asyncio.run(wait_for_backends(self.lb_target, len(ids), ids=ids, timeout=timeout))

    def live_ids(self) -> set[str]:
        return {b.id for b in asyncio.run(list_backends(self.lb_target)).backends}

    def stop(self) -> None:
        stop_all(list(self.backends.values()))
        if self.lb is not None:
            self.lb.stop()
