"""Start real ``lookaside`` processes on loopback for integration tests, and load them.

:class:`Cluster` runs an LB and backends as child processes; its admin calls
(``wait_registered``, ``live_ids``) use ``admin_token``/``admin_tls`` when the
LB wants them. :class:`LoadRun` sends requests through one
:class:`~lookaside.client.LookasideClient` from a background thread while a test
kills and restarts processes, and counts what happened. :func:`wait_until`
waits on a condition with a deadline (no sleep-based synchronisation).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from lookaside.client.admin import list_backends, wait_for_backends
from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS, ClientConfig
from lookaside.client.lookaside_client import ComputeResult, LookasideClient, LookasideError
from lookaside.procs import ServerProcess, stop_all
from lookaside.security import TlsConfig, Token
from lookaside.v1 import load_balancer_pb2 as pb

FAST_LEASES = ["--ttl", "1.5", "--report-interval", "0.3"]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once ``condition()`` holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class Cluster:
    """An LB and backends as child processes; everything is stopped at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.lb: ServerProcess | None = None
        self.backends: dict[str, ServerProcess] = {}
        self._lb_starts = 0
        self.admin_token: Token | None = None  # the LB's client token, for ListBackends
        self.admin_tls: TlsConfig | None = None  # how to reach a TLS LB

    @property
    def lb_target(self) -> str:
        assert self.lb is not None and self.lb.port, "start_lb first"
        return f"127.0.0.1:{self.lb.port}"

    def start_lb(
        self,
        policy: str = "round_robin",
        *extra: str,
        port: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> ServerProcess:
        self._lb_starts += 1
        args = ["lb", "--port", str(port), "--policy", policy, *FAST_LEASES, *extra]
        self.lb = ServerProcess(f"lb{self._lb_starts}", args, self.log_dir, env).start()
        self.lb.wait_listening()
        return self.lb

    def start_backend(
        self,
        backend_id: str,
        *extra: str,
        work_ms: float = 0,
        env: Mapping[str, str] | None = None,
    ) -> ServerProcess:
        """Start a backend (again, after a restart: same id, same log file, new port)."""
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
        process = ServerProcess(backend_id, args, self.log_dir, env).start()
        process.wait_listening()
        self.backends[backend_id] = process
        return process

    def wait_registered(self, ids: set[str], timeout: float = 20.0) -> list[pb.BackendInfo]:
        return asyncio.run(
            wait_for_backends(
                self.lb_target,
                len(ids),
                ids=ids,
                timeout=timeout,
                token=self.admin_token,
                tls=self.admin_tls,
            )
        )

    def list_backends(self) -> list[pb.BackendInfo]:
        reply = asyncio.run(
            list_backends(self.lb_target, token=self.admin_token, tls=self.admin_tls)
        )
        return list(reply.backends)

    def live_ids(self) -> set[str]:
        return {b.id for b in self.list_backends()}

    def logs(self) -> str:
        """Every log line the cluster's processes wrote so far."""
        return "".join(path.read_text(errors="replace") for path in self.log_dir.glob("*.log"))

    def stop(self) -> None:
        stop_all(list(self.backends.values()))
        if self.lb is not None:
            self.lb.stop()


class LoadRun:
    """Closed-loop load through one ``LookasideClient`` on a background thread.

    ``concurrency`` workers each send a request, check the answer, pause
    ``pause`` seconds and go again, until :meth:`stop` or ``limit`` requests.
    Counters are plain ints written by the load thread and read by the test.
    """

    def __init__(
        self,
        lb_target: str,
        *,
        concurrency: int = 8,
        pause: float = 0.005,
        limit: int = 5000,
        config: ClientConfig = LOOKASIDE_CLIENT_DEFAULTS,
    ) -> None:
        self.lb_target = lb_target
        self.concurrency = concurrency
        self.pause = pause
        self.limit = limit
        self.config = config
        self.sent = self.ok = self.failed = self.retried = 0
        self.via_lb = self.via_memory = 0
        self.served_by: Counter[str] = Counter()
        self.served_from_memory: Counter[str] = Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)
        self.started = self.finished = 0.0

    def __enter__(self) -> LoadRun:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self.finished = time.monotonic()

    def wait_ok(self, more: int, timeout: float = 20.0, what: str = "") -> None:
        """Wait until ``more`` further requests have succeeded."""
        target = self.ok + more
        wait_until(lambda: self.ok >= target, timeout, what or f"{more} more successes")

    def summary(self) -> str:
        seconds = (self.finished or time.monotonic()) - self.started
        return (
            f"sent={self.sent} ok={self.ok} failed={self.failed} retried={self.retried} "
            f"via_lb={self.via_lb} via_memory={self.via_memory} seconds={seconds:.1f} "
            f"served_by={dict(self.served_by)}"
        )

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        async with LookasideClient(self.lb_target, config=self.config) as client:
            await asyncio.gather(*(self._worker(client, n) for n in range(self.concurrency)))

    async def _worker(self, client: LookasideClient, worker: int) -> None:
        while not self._stop.is_set() and self.sent < self.limit:
            self.sent += 1
            text = f"w{worker}-{self.sent}"
            try:
                reply = await client.compute(text)
            except LookasideError as error:
                self.failed += 1
                self.errors.append(str(error))
            else:
                self._count(reply, text)
            await asyncio.sleep(self.pause)

    def _count(self, reply: ComputeResult, text: str) -> None:
        if reply.result != text[::-1]:
            self.failed += 1
            self.errors.append(f"wrong answer {reply.result!r} for {text!r}")
            return
        self.ok += 1
        self.retried += reply.attempts > 1
        self.served_by[reply.backend_id] += 1
        if reply.from_lb:
            self.via_lb += 1
        else:
            self.via_memory += 1
            self.served_from_memory[reply.backend_id] += 1
