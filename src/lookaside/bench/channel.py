"""``lookaside bench-channel``: what ``lookaside.channel`` costs per call against stock gRPC.

One LB and a few user-style backends (:mod:`lookaside.bench.noop_server`: a
no-op unary method, no protobuf, so the channels' own work is what shows),
then the same closed-loop load through two pairs of clients, each pair
alternating run by run (A B A B ...) so that drift on a shared machine hits
both alike:

* ``channel`` — ``lookaside.channel`` on the fast path (local picks from
  ``WatchBackends``), with its default config (client stats on);
* ``grpc_aio`` — a stock ``grpc.aio`` channel over the same backends' static
  addresses with gRPC's own ``round_robin``;
* ``sync_channel`` — ``lookaside.sync_channel`` from blocking threads;
* ``grpc_sync`` — a stock blocking channel with ``round_robin``, same threads.

Each repeat also runs a pair *mixed*: every task (or thread) takes the two
clients in turn, call by call, so both see the very same moments of a shared,
busy machine; there the throughput ratio is read from the mean latencies
(Little's law for a closed loop).

Reported per mode: throughput, p50 and p99 latency; and the ratios
channel / grpc_aio and sync_channel / grpc_sync, apart and mixed (goals:
throughput >= 0.95, p99 <= 1.2).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

import lookaside
from lookaside.bench.load import GRPC_ROUND_ROBIN_CONFIG, static_target
from lookaside.bench.metrics import median_figures
from lookaside.bench.noop_server import METHOD, SERVICE
from lookaside.client.admin import wait_for_backends
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb

MODES = ("channel", "grpc_aio", "sync_channel", "grpc_sync")
PAIRS = (("channel", "grpc_aio"), ("sync_channel", "grpc_sync"))
MIXED = "+mixed"  # suffix of the runs where both clients of a pair take turns call by call
PAYLOAD = b"ping"
CALL_TIMEOUT = 10.0
GOAL_THROUGHPUT_RATIO = 0.95
GOAL_P99_RATIO = 1.2

_CHILD = (
    "import sys\n"
    "from lookaside.procs import die_with_parent\n"
    "die_with_parent(int(sys.argv.pop(1)))\n"
    "from lookaside.bench.noop_server import main\n"
    "main()\n"
)


@dataclass(frozen=True)
class BenchChannelOptions:
    """What ``lookaside bench-channel`` varies (its flags read their defaults here)."""

    servers: int = 3
    concurrency: int = 16  # async tasks, and blocking threads for the sync modes
    requests: int = 1500  # per run, over all tasks or threads
    repeat: int = 15
    warmup: int = 400


@dataclass(frozen=True)
class ModeRun:
    mode: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    throughput_rps: float
    mean_ms: float


def _quantile(sorted_ms: Sequence[float], q: float) -> float:
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def _summary(mode: str, latencies: list[float], errors: int, wall: float) -> ModeRun:
    ordered = sorted(latencies)
    return ModeRun(
        mode=mode,
        requests=len(latencies) + errors,
        errors=errors,
        p50_ms=_quantile(ordered, 0.50) * 1e3,
        p99_ms=_quantile(ordered, 0.99) * 1e3,
        throughput_rps=len(latencies) / wall,
        mean_ms=statistics.fmean(latencies) * 1e3 if latencies else 0.0,
    )


Loaded = tuple[list[list[float]], int, float]  # latencies per call, errors, wall seconds


async def _async_load(
    calls: Sequence[Callable[[], Any]], concurrency: int, requests: int
) -> Loaded:
    """Closed loop: ``concurrency`` tasks; with several calls each task takes them in turn."""
    latencies: list[list[float]] = [[] for _ in calls]
    errors = 0
    per_task = requests // concurrency

    async def worker(offset: int) -> None:
        nonlocal errors
        clock = time.perf_counter
        for number in range(per_task):
            which = (offset + number) % len(calls)
            started = clock()
            try:
                await calls[which]()
            except grpc.RpcError:
                errors += 1
                continue
            latencies[which].append(clock() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


def _thread_load(calls: Sequence[Callable[[], Any]], concurrency: int, requests: int) -> Loaded:
    """The same with blocking threads."""
    latencies: list[list[list[float]]] = [[[] for _ in calls] for _ in range(concurrency)]
    errors = [0] * concurrency
    per_thread = requests // concurrency
    go = threading.Barrier(concurrency + 1)

    def worker(index: int) -> None:
        clock = time.perf_counter
        mine = latencies[index]
        go.wait()
        for number in range(per_thread):
            which = (index + number) % len(calls)
            started = clock()
            try:
                calls[which]()
            except grpc.RpcError:
                errors[index] += 1
                continue
            mine[which].append(clock() - started)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    go.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    merged = [
        [x for per_thread_lists in latencies for x in per_thread_lists[i]]
        for i in range(len(calls))
    ]
    return merged, sum(errors), wall


class _AsyncPair:
    """``lookaside.channel`` and a stock ``grpc.aio`` channel, opened and warmed once."""

    modes = ("channel", "grpc_aio")

    def __init__(self, lb_target: str, backends: Sequence[pb.BackendInfo]) -> None:
        self.count = len(backends)
        self.channel = lookaside.channel(lb_target, SERVICE)
        self.stock = aio.insecure_channel(static_target(backends), options=_ROUND_ROBIN)
        self.calls = {
            "channel": _bound(self.channel.unary_unary(METHOD, None, None)),
            "grpc_aio": _bound(self.stock.unary_unary(METHOD, None, None)),
        }

    async def open(self) -> None:
        await self.channel.wait_for_backends(self.count, timeout=30)
        await asyncio.wait_for(self.stock.channel_ready(), 30)

    async def close(self) -> None:
        await self.channel.close()
        await self.stock.close(None)


class _SyncPair:
    """``lookaside.sync_channel`` and a stock blocking channel, opened and warmed once."""

    modes = ("sync_channel", "grpc_sync")

    def __init__(self, lb_target: str, backends: Sequence[pb.BackendInfo]) -> None:
        self.count = len(backends)
        self.channel = lookaside.sync_channel(lb_target, SERVICE)
        self.stock = grpc.insecure_channel(static_target(backends), options=_ROUND_ROBIN)
        self.calls = {
            "sync_channel": _bound(self.channel.unary_unary(METHOD, None, None)),
            "grpc_sync": _bound(self.stock.unary_unary(METHOD, None, None)),
        }

    async def open(self) -> None:
        self.channel.wait_for_backends(self.count, timeout=30)
        grpc.channel_ready_future(self.stock).result(30)

    async def close(self) -> None:
        self.channel.close()
        self.stock.close()


_ROUND_ROBIN = [("grpc.service_config", GRPC_ROUND_ROBIN_CONFIG)]
_Pair = _AsyncPair | _SyncPair


def _bound(multicallable: Any) -> Callable[[], Any]:
    def call() -> Any:
        return multicallable(PAYLOAD, timeout=CALL_TIMEOUT)

    return call


async def _load(
    pair: _Pair, modes: Sequence[str], options: BenchChannelOptions, requests: int
) -> Loaded:
    calls = [pair.calls[mode] for mode in modes]
    if isinstance(pair, _SyncPair):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _thread_load, calls, options.concurrency, requests)
    return await _async_load(calls, options.concurrency, requests)


async def _run(pair: _Pair, mode: str, options: BenchChannelOptions, requests: int) -> ModeRun:
    (latencies,), errors, wall = await _load(pair, [mode], options, requests)
    return _summary(mode, latencies, errors, wall)


async def _run_mixed(pair: _Pair, options: BenchChannelOptions) -> list[ModeRun]:
    """Both clients at once, every task taking them in turn: the same moment for both."""
    latencies, errors, wall = await _load(pair, pair.modes, options, options.requests)
    return [
        _summary(f"{mode}{MIXED}", mine, errors, wall)
        for mode, mine in zip(pair.modes, latencies, strict=True)
    ]


def _start_backends(lb_target: str, count: int, log_dir: Path) -> list[Any]:
    children = []
    for index in range(1, count + 1):
        log = open(log_dir / f"noop{index}.log", "ab")  # noqa: SIM115 - closed with the child
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(os.getpid()),
                "--lb",
                lb_target,
                "--id",
                f"noop{index}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        children.append((child, log))
    return children


async def run_channel_bench(
    options: BenchChannelOptions, log_dir: Path | None = None
) -> list[ModeRun]:
    """Start an LB and ``options.servers`` no-op backends; alternate the four modes."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="lookaside-bench-channel-"))
    lb = ServerProcess("lb", ["lb", "--port", "0", "--policy", "round_robin"], log_dir).start()
    children: list[Any] = []
    try:
        lb.wait_listening()
        lb_target = f"127.0.0.1:{lb.port}"
        children = _start_backends(lb_target, options.servers, log_dir)
        backends = await wait_for_backends(lb_target, options.servers, service=SERVICE, timeout=30)
        runs: list[ModeRun] = []
        # One pair at a time: the sync channel's event-loop thread is not there while
        # the async pair runs.
        for make in (_AsyncPair, _SyncPair):
            pair = make(lb_target, backends)
            try:
                await pair.open()
                for mode in pair.modes:
                    await _run(pair, mode, options, options.warmup)
                for _ in range(options.repeat):
                    for mode in pair.modes:
                        runs.append(await _run(pair, mode, options, options.requests))
                    runs.extend(await _run_mixed(pair, options))
            finally:
                await pair.close()
        return runs
    finally:
        for child, _ in children:
            child.terminate()
        for child, log in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
            log.close()
        lb.stop()


def medians(runs: Sequence[ModeRun], mode: str) -> dict[str, float]:
    figures = ("p50_ms", "p99_ms", "throughput_rps", "errors")
    return median_figures((r for r in runs if r.mode == mode), figures)


def ratios(runs: Sequence[ModeRun], mode: str, baseline: str) -> dict[str, float]:
    """Median over the repeats of each run's ratio to the baseline's run next to it.

    ``throughput``/``p99``/``p50``: the separate runs. ``mixed_*``: the runs where
    both took turns call by call; there a closed loop's throughput is inversely
    proportional to the mean latency (Little's law), so ``mixed_throughput`` is
    the baseline's mean latency over ours.
    """

    def paired(a: str, b: str) -> list[tuple[ModeRun, ModeRun]]:
        ours = [r for r in runs if r.mode == a]
        theirs = [r for r in runs if r.mode == b]
        return list(zip(ours, theirs, strict=True))

    apart, mixed = paired(mode, baseline), paired(mode + MIXED, baseline + MIXED)
    return {
        "throughput": statistics.median(a.throughput_rps / b.throughput_rps for a, b in apart),
        "p99": statistics.median(a.p99_ms / b.p99_ms for a, b in apart),
        "p50": statistics.median(a.p50_ms / b.p50_ms for a, b in apart),
        "mixed_throughput": statistics.median(b.mean_ms / a.mean_ms for a, b in mixed),
        "mixed_p99": statistics.median(a.p99_ms / b.p99_ms for a, b in mixed),
    }


__all__ = [
    "GOAL_P99_RATIO",
    "GOAL_THROUGHPUT_RATIO",
    "MIXED",
    "MODES",
    "PAIRS",
    "BenchChannelOptions",
    "ModeRun",
    "medians",
    "ratios",
    "run_channel_bench",
]
