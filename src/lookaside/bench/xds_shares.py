"""Stock xDS clients in the lab: run them, read their shares, and compare with the weights.

:class:`StockClient` runs a stock client as a child process — the grpcio script
:mod:`lookaside.bench.stock_xds_client` (no lookaside import; code generated
from the ``.proto`` by :func:`generate_stubs`) or Node's ``tests/node/xds_client.js``
(grpc-js + grpc-js-xds) — and collects the JSON line it prints per window.
:func:`pushed_weights` asks the LB's ADS service, as a client would, which
locality weights it currently hands out. :func:`run_shares` puts it together
for ``lookaside bench-xds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from lookaside._protogen import PROTO_FILE, PROTO_ROOT, REPO_ROOT
from lookaside.lb.xds import resources
from lookaside.lb.xds.bootstrap import bootstrap
from lookaside.procs import ServerProcess, stop_all

STOCK_CLIENT = Path(__file__).with_name("stock_xds_client.py")
NODE_DIR = REPO_ROOT / "tests" / "node"
NODE_CLIENT = NODE_DIR / "xds_client.js"


def generate_stubs(out_dir: Path) -> Path:
    """``load_balancer_pb2*.py`` generated from the .proto alone, as any user would."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    proto = shutil.copy(PROTO_ROOT / PROTO_FILE, out_dir / "load_balancer.proto")
    args = ["protoc", f"-I{out_dir}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"]
    if protoc.main([*args, str(proto)]) != 0:
        raise RuntimeError("protoc failed on load_balancer.proto")
    return out_dir


def node_missing() -> str | None:
    """Why the Node client cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js-xds").is_dir():
        return f"run 'npm ci' in {NODE_DIR}"
    return None


def python_command(stubs: Path, target: str, concurrency: int, timeout: float = 5.0) -> list[str]:
    return [
        sys.executable,
        str(STOCK_CLIENT),
        target,
        "--stubs",
        str(stubs),
        "--concurrency",
        str(concurrency),
        "--timeout",
        str(timeout),
    ]


def node_command(proto: Path, target: str, concurrency: int, timeout: float = 5.0) -> list[str]:
    return [
        "node",
        str(NODE_CLIENT),
        target,
        "--proto",
        str(proto),
        "--concurrency",
        str(concurrency),
        "--timeout",
        str(timeout),
    ]


@dataclass
class Window:
    t: float  # seconds since the client started
    served: dict[str, int]
    failed: int
    errors: list[str]


@dataclass
class StockClient:
    """A stock xDS client child process; stops when its stdin closes."""

    name: str
    command: list[str]
    bootstrap_path: Path
    log_dir: Path
    windows: list[Window] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> StockClient:
        log = open(self.log_dir / f"{self.name}.log", "a")  # noqa: SIM115 - owned by the child
        self._proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "GRPC_XDS_BOOTSTRAP": str(self.bootstrap_path)},
        )
        log.close()
        self._reader = threading.Thread(target=self._read, name=self.name, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError, TypeError):
                self.windows.append(Window(**json.loads(line)))

    def served_since(self, t: float) -> Counter[str]:
        """Calls per backend in the windows that ended after ``t``."""
        total: Counter[str] = Counter()
        for window in list(self.windows):
            if window.t > t:
                total.update(window.served)
        return total

    def failed_since(self, t: float) -> int:
        return sum(w.failed for w in list(self.windows) if w.t > t)

    def now(self) -> float:
        """The client's clock: the end of its latest window (0 before the first)."""
        return self.windows[-1].t if self.windows else 0.0

    def next_time(self, timeout: float = 5.0) -> float:
        """The end of the next window: a client time no earlier than this call.

        ``now()`` lags the present by up to a window; a deadline counted from it
        would be that much stricter than it says.
        """
        seen = len(self.windows)
        self.wait_for(lambda: len(self.windows) > seen, timeout, "its next window")
        return self.windows[seen].t

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_text()[-2000:]}")
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{self.name}: timed out after {timeout}s waiting for {what}; "
                    f"last windows: {self.windows[-3:]}"
                )
            time.sleep(0.05)

    def wait_until_time(self, t: float, timeout: float) -> None:
        """Until the client has reported windows up to its own time ``t``."""
        self.wait_for(lambda: self.now() >= t, timeout, f"its clock to reach {t:g} s")

    def log_text(self) -> str:
        path = self.log_dir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)


def write_bootstrap(
    lb_target: str, path: Path, node_id: str = "lookaside-lab", ca: Path | None = None
) -> Path:
    """The bootstrap a stock client reads (``ca``: the LB serves TLS signed by it)."""
    path.write_text(json.dumps(bootstrap(lb_target, node_id, ca)))
    return path


async def _pushed_weights(lb_target: str, service: str) -> dict[str, int]:
    async with grpc.aio.insecure_channel(lb_target) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        request = discovery_pb2.DiscoveryRequest(
            type_url=resources.LOAD_ASSIGNMENT, resource_names=[service]
        )
        request.node.id = "lookaside-lab-probe"
        call = stub.StreamAggregatedResources(iter([request]))
        response = await asyncio.wait_for(call.read(), 10)
        call.cancel()
    weights: dict[str, int] = {}
    for body in response.resources:
        for locality in resources.unpack(body).endpoints:  # type: ignore[attr-defined]
            weights[locality.locality.sub_zone] = locality.load_balancing_weight.value
    return weights


def pushed_weights(lb_target: str, service: str = "compute") -> dict[str, int]:
    """The locality weights the LB hands out for ``service`` now (an ADS client's view)."""
    return asyncio.run(_pushed_weights(lb_target, service))


@dataclass(frozen=True)
class SharesRun:
    """What ``lookaside bench-xds`` measured."""

    policy: str
    static_weights: dict[str, float]
    work_ms: dict[str, float]
    pushed: dict[str, int]
    measured: dict[str, dict[str, int]]  # client name -> backend id -> calls
    failed: dict[str, int]


def shares(counts: dict[str, int] | Counter[str]) -> dict[str, float]:
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items())}


@contextlib.contextmanager
def _lab(log_dir: Path, policy: str, lb_args: Sequence[str]) -> Iterator[list[ServerProcess]]:
    processes: list[ServerProcess] = []
    try:
        lb = ServerProcess("lb", ["lb", "--port", "0", "--policy", policy, *lb_args], log_dir)
        processes.append(lb.start())
        lb.wait_listening()
        yield processes
    finally:
        stop_all(processes[1:])
        if processes:
            processes[0].stop()


def run_shares(
    weights: Sequence[float],
    work_ms: Sequence[float],
    policy: str,
    seconds: float,
    settle: float,
    concurrency: int,
    clients: Sequence[str],
    lb_args: Sequence[str] = (),
) -> SharesRun:
    """Backends b1..bn with the given static weights and work; stock clients measure shares."""
    with tempfile.TemporaryDirectory(prefix="lookaside-xds-") as tmp:
        log_dir = Path(tmp)
        with _lab(log_dir, policy, lb_args) as processes:
            lb_target = f"127.0.0.1:{processes[0].port}"
            ids = [f"b{n + 1}" for n in range(len(weights))]
            for backend_id, weight, work in zip(ids, weights, work_ms, strict=True):
                args = ["backend", "--lb", lb_target, "--id", backend_id, "--weight", str(weight)]
                args += ["--work-ms", str(work), "--workers", "64"]
                backend = ServerProcess(backend_id, args, log_dir).start()
                processes.append(backend)
                backend.wait_listening()
            bootstrap_path = write_bootstrap(lb_target, log_dir / "bootstrap.json")
            stubs = generate_stubs(log_dir / "stubs")
            commands = {
                "grpcio": python_command(stubs, "xds:///compute", concurrency),
                "node": node_command(stubs / "load_balancer.proto", "xds:///compute", concurrency),
            }
            running = [
                StockClient(name, commands[name], bootstrap_path, log_dir).start()
                for name in clients
            ]
            try:
                for client in running:
                    client.wait_until_time(settle, settle + 30)
                start = {client.name: client.now() for client in running}
                for client in running:
                    client.wait_until_time(start[client.name] + seconds, seconds + 30)
                pushed = pushed_weights(lb_target)
            finally:
                for client in running:
                    client.stop()
            return SharesRun(
                policy=policy,
                static_weights=dict(zip(ids, weights, strict=True)),
                work_ms=dict(zip(ids, work_ms, strict=True)),
                pushed=pushed,
                measured={c.name: dict(c.served_since(start[c.name])) for c in running},
                failed={c.name: c.failed_since(start[c.name]) for c in running},
            )


def shares_table(run: SharesRun) -> list[dict[str, Any]]:
    """One row per backend: static weight, work, pushed weight and share, each client's share."""
    pushed = shares(run.pushed)
    measured = {name: shares(counts) for name, counts in run.measured.items()}
    rows = []
    for backend_id, weight in run.static_weights.items():
        row: dict[str, Any] = {
            "backend": backend_id,
            "static": weight,
            "work_ms": run.work_ms[backend_id],
            "pushed": run.pushed.get(backend_id, 0),
            "pushed_share": round(pushed.get(backend_id, 0.0), 3),
        }
        for name, share in measured.items():
            row[name] = round(share.get(backend_id, 0.0), 3)
        rows.append(row)
    return rows
