"""An LB and its backends as real child processes, for the scale tools and the lab.

Built on :mod:`lookaside.procs` (log files, readiness, ``PR_SET_PDEATHSIG`` so a
killed parent leaves no orphans). Every process is started from the calling
thread: the kernel's parent-death signal fires when the *thread* that forked a
child exits, so spawning from a short-lived worker thread would stop children
early. Callers therefore start processes from the main thread (the asyncio loop
thread counts) and only *wait* asynchronously.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lookaside.client.admin import wait_for_backends
from lookaside.model import DEFAULT_SERVICE
from lookaside.procs import LISTENING, ServerProcess, stop_all
from lookaside.v1 import load_balancer_pb2 as pb


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """How to start one backend: the ``lookaside backend`` flags the lab varies."""

    id: str
    workers: int = 4
    work_ms: float = 0.0
    work_mode: str = "sleep"
    service: str = DEFAULT_SERVICE
    port: int = 0
    report_interval: float | None = None
    extra: tuple[str, ...] = ()

    def args(self, lb_target: str) -> list[str]:
        args = [
            "backend",
            "--lb", lb_target,
            "--id", self.id,
            "--port", str(self.port),
            "--service", self.service,
            "--workers", str(self.workers),
            "--work-ms", f"{self.work_ms:g}",
            "--work-mode", self.work_mode,
        ]  # fmt: skip
        if self.report_interval is not None:
            args += ["--report-interval", f"{self.report_interval:g}"]
        return [*args, *self.extra]


def numbered_ids(count: int, first: int = 1, prefix: str = "backend") -> list[str]:
    """``backend1..backendN``, the seed's names."""
    return [f"{prefix}{i}" for i in range(first, first + count)]


@dataclass
class Fleet:
    """An LB (optional: ``lb_target`` may name one run elsewhere) and backends."""

    log_dir: Path
    lb_target: str = ""
    lb: ServerProcess | None = None
    backends: dict[str, ServerProcess] = field(default_factory=dict)
    specs: dict[str, BackendSpec] = field(default_factory=dict)
    _generation: int = 0

    def spawn_lb(self, policy: str, extra: Sequence[str] = (), port: int = 0) -> ServerProcess:
        """Start ``lookaside lb`` without waiting (see :meth:`wait_lb`)."""
        self._generation += 1
        args = ["lb", "--port", str(port), "--policy", policy, *extra]
        self.lb = ServerProcess(f"lb-{self._generation}", args, self.log_dir).start()
        return self.lb

    def start_lb(self, policy: str, extra: Sequence[str] = (), port: int = 0) -> str:
        """Start ``lookaside lb`` and wait until it listens; returns ``127.0.0.1:PORT``."""
        self.spawn_lb(policy, extra, port)
        assert self.lb is not None
        self.lb_target = f"127.0.0.1:{self.lb.wait_listening()}"
        return self.lb_target

    async def wait_lb(self, timeout: float = 30.0) -> str:
        """:meth:`ServerProcess.wait_listening` without blocking the event loop."""
        assert self.lb is not None, "spawn_lb first"
        deadline = asyncio.get_running_loop().time() + timeout
        while not (match := LISTENING.search(self.lb.log_text())):
            if not self.lb.alive():
                raise RuntimeError(f"the LB exited early:\n{self.lb.log_text()[-2000:]}")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the LB is not listening after {timeout}s")
            await asyncio.sleep(0.02)
        self.lb.port = int(match.group(2))
        self.lb_target = f"127.0.0.1:{self.lb.port}"
        return self.lb_target

    def spawn(self, spec: BackendSpec) -> ServerProcess:
        """Start one backend without waiting for it (see :meth:`wait_registered`)."""
        if not self.lb_target:
            raise ValueError("no LB to register with: start_lb() or set lb_target first")
        name = f"{spec.id}-{self._generation}-{len(self.backends)}"
        process = ServerProcess(name, spec.args(self.lb_target), self.log_dir).start()
        self.backends[spec.id] = process
        self.specs[spec.id] = spec
        return process

    def spawn_all(self, specs: Sequence[BackendSpec]) -> list[ServerProcess]:
        return [self.spawn(spec) for spec in specs]

    async def wait_registered(
        self, ids: Sequence[str] | None = None, timeout: float = 60.0
    ) -> list[pb.BackendInfo]:
        """Wait until every backend in ``ids`` (default: all started) is live at the LB.

        Fails fast, with the log tail, when one of them exits while we wait.
        """
        wanted = set(self.backends if ids is None else ids)
        services = {self.specs[i].service for i in wanted} or {DEFAULT_SERVICE}
        waits = [
            asyncio.ensure_future(
                wait_for_backends(
                    self.lb_target,
                    len(wanted),
                    service=service,
                    timeout=timeout,
                    ids={i for i in wanted if self.specs[i].service == service},
                )
            )
            for service in services
        ]
        try:
            while not all(w.done() for w in waits):
                self._check_alive(wanted)
                await asyncio.wait(waits, timeout=0.1)
            found = [b for w in waits for b in w.result()]
        finally:
            for w in waits:
                w.cancel()
        return [b for b in found if b.id in wanted]

    def _check_alive(self, ids: set[str]) -> None:
        for backend_id in ids:
            process = self.backends[backend_id]
            if not process.alive():
                code = process.wait(0)
                raise RuntimeError(
                    f"{backend_id} exited (code {code}) before registering:\n"
                    f"{process.log_text()[-2000:]}"
                )

    def kill(self, backend_id: str) -> None:
        """SIGKILL one backend (no deregistration, no drain) and forget it."""
        process = self.backends.pop(backend_id)
        process.signal(signal.SIGKILL)
        process.wait(5.0)

    def kill_lb(self) -> None:
        if self.lb is not None:
            self.lb.signal(signal.SIGKILL)
            self.lb.wait(5.0)

    def pids(self) -> dict[str, int]:
        return {backend_id: process.pid for backend_id, process in self.backends.items()}

    def stop(self, timeout: float = 10.0) -> None:
        """Backends first (so they deregister while the LB is still up), then the LB."""
        stop_all(list(self.backends.values()), timeout)
        if self.lb is not None:
            self.lb.stop(timeout)
