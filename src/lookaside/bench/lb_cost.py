"""``lookaside bench-lb-cost``: what one LB process pays per report and per watch push.

The LB runs as a real separate process (``lookaside lb``); the fleet is
simulated in this process as raw gRPC streams, so thousands of backends fit on
a small machine: each simulated backend registers (``RegisterBackend``) and
holds a ``StreamLoad`` stream, and one driver hands the streams their reports
at a fixed total rate, spread evenly over the fleet. Watchers are raw
``WatchBackends`` streams that count the bytes they receive (the wire size of
each push) and which pushes were whole sets.

Three cases, each on a fresh LB:

* ``reports`` — the LB's CPU per streamed load report at a small and a large
  fleet (same total report rate), and their ratio: flat means a report's cost
  does not grow with the fleet;
* ``getbackend`` — GetBackend latency (p50, p99) at a fixed request rate while
  every backend of a large fleet reports once a second;
* ``watch`` — a fleet reporting once a second watched by many subscribers that
  accept deltas: the LB's CPU share and the bytes per push.

Each case runs against two builds of the LB, alternating, ``repeat`` times:
``after`` (this code) and ``before`` (the source tree of a git revision,
exported with ``git archive`` and put first on the LB's ``PYTHONPATH``), so the
figures are measured side by side on the same machine in one run. CPU comes
from ``/proc/<pid>/stat`` (10 ms ticks) over the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import random
import statistics
import subprocess
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grpc import aio

from lookaside.bench.fastpath import process_cpu_seconds
from lookaside.bench.metrics import percentile
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

#: The last revision whose LB rebuilt the picker on every report and pushed whole sets.
BASELINE_REF = "7c65bad"
SERVICE = "compute"
WATCH_METHOD = "/lookaside.v1.LoadBalancer/WatchBackends"
#: Flags every LB build gets: room for big fleets, leases that outlive slow rounds.
LB_FLAGS = (
    "--policy", "least_load", "--ttl", "120", "--max-backends", "20000",
    "--max-streams", "20000", "--max-message-bytes", "4194304",
)  # fmt: skip
#: Connections the simulated fleet spreads its streams over, whatever its size, so both
#: fleet sizes pay the same transport costs (HTTP/2 batching differs per connection).
FLEET_CHANNELS = 10
_TICK = 0.01
#: Seconds a registration may take on a crowded machine (fleets join in one burst).
_SLOW_RPC = 120.0


@dataclass(frozen=True)
class CostConfig:
    """What ``lookaside bench-lb-cost`` measures; every default in one place."""

    small_fleet: int = 50
    large_fleet: int = 2000
    #: Total reports per second in the ``reports`` case (the same at both fleet sizes).
    report_rate: float = 1000.0
    getbackend_rate: float = 200.0  # GetBackend calls per second in the ``getbackend`` case
    watch_fleet: int = 1000
    watchers: int = 100
    seconds: float = 5.0  # measured window of each case
    warmup: float = 1.5  # seconds of reports before the window opens
    repeat: int = 3
    baseline: str = BASELINE_REF  # git revision of the "before" LB; "" = skip it
    #: Flags for the "after" LB only (the baseline may not know them).
    after_flags: tuple[str, ...] = ("--report-budget", "100000")

    def __post_init__(self) -> None:
        if min(self.small_fleet, self.large_fleet, self.watch_fleet, self.watchers) < 1:
            raise ValueError("fleet sizes and --watchers must be at least 1")
        if min(self.report_rate, self.getbackend_rate, self.seconds) <= 0 or self.repeat < 1:
            raise ValueError("rates, --seconds and --repeat must be positive")


@dataclass
class CostRun:
    """One build's figures from one repeat."""

    build: str
    repeat: int
    cpu_us_per_report_small: float = 0.0
    cpu_us_per_report_large: float = 0.0
    reports_small: int = 0
    reports_large: int = 0
    getbackend_p50_ms: float = 0.0
    getbackend_p99_ms: float = 0.0
    getbackend_errors: int = 0
    getbackend_lb_cpu_share: float = 0.0  # of one core, while ingesting the reports
    watch_cpu_share: float = 0.0  # of one core
    watch_bytes_per_push: float = 0.0
    watch_pushes_per_s: float = 0.0  # per subscriber
    watch_full_pushes: int = 0

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_us_per_report_large / max(self.cpu_us_per_report_small, 1e-9)


FIGURES = (
    "cpu_us_per_report_small",
    "cpu_us_per_report_large",
    "cpu_ratio",
    "getbackend_p50_ms",
    "getbackend_p99_ms",
    "getbackend_lb_cpu_share",
    "watch_cpu_share",
    "watch_bytes_per_push",
    "watch_pushes_per_s",
)


def medians(runs: Sequence[CostRun], build: str) -> dict[str, float]:
    mine = [r for r in runs if r.build == build]
    return {f: statistics.median(getattr(r, f) for r in mine) for f in FIGURES}


def export_source(ref: str, into: Path) -> Path:
    """``src/`` of git revision ``ref`` unpacked under ``into``; the path to put on PYTHONPATH."""
    package_dir = Path(__file__).resolve().parents[1]
    try:
        top = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "--show-toplevel"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        archive = subprocess.run(
            ["git", "-C", top, "archive", "--format=tar", ref, "src"],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        raise ValueError(
            f"cannot export revision {ref!r} for the baseline LB ({error}); "
            "run from a git checkout or pass --baseline none"
        ) from None
    archive_path = into / "baseline.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


@dataclass
class LbBuild:
    name: str
    pythonpath: Path | None = None
    flags: tuple[str, ...] = ()

    def start(self, log_dir: Path, label: str) -> ServerProcess:
        env = {"PYTHONPATH": str(self.pythonpath)} if self.pythonpath else {}
        args = ["lb", "--port", "0", *LB_FLAGS, *self.flags]
        process = ServerProcess(f"lb-{self.name}-{label}", args, log_dir, env).start()
        process.wait_listening()
        return process


class Channels:
    """A few channels to the LB, streams spread over them (one HTTP/2 connection each)."""

    def __init__(self, target: str, count: int) -> None:
        self.channels = [
            aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(max(1, count))
        ]

    def stub(self, index: int) -> pb_grpc.LoadBalancerStub:
        return pb_grpc.LoadBalancerStub(self.channels[index % len(self.channels)])

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close(None)


@dataclass
class SimulatedFleet:
    """``count`` backends as raw streams: register, then report when the driver says."""

    target: str
    count: int
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    sent: int = 0

    def __post_init__(self) -> None:
        self._channels = Channels(self.target, min(self.count, FLEET_CHANNELS))
        self._queues: list[asyncio.Queue[pb.LoadReport | None]] = []
        self._calls: list[asyncio.Task[pb.RegisterResponse]] = []
        self._next = 0

    def backend_id(self, index: int) -> str:
        return f"sim-{index:05d}"

    async def start(self) -> None:
        """Register every backend and open its stream at once (its first report keeps the lease)."""
        gate = asyncio.Semaphore(64)
        self._queues = [asyncio.Queue() for _ in range(self.count)]

        async def join(index: int) -> None:
            stub = self._channels.stub(index)
            async with gate:
                await stub.RegisterBackend(
                    pb.BackendInfo(
                        id=self.backend_id(index),
                        address="127.0.0.1",
                        port=20000 + index % 40000,
                        service_name=SERVICE,
                        capacity=4,
                    ),
                    timeout=_SLOW_RPC,
                )
            self._calls.append(asyncio.ensure_future(stub.StreamLoad(self._reports(index))))
            self._queue_report(index)  # a first report names the stream's backend

        await asyncio.gather(*(join(i) for i in range(self.count)))
        deadline = asyncio.get_running_loop().time() + _SLOW_RPC
        while self.sent < self.count and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(_TICK)

    async def _reports(self, index: int) -> AsyncIterator[pb.LoadReport]:
        queue = self._queues[index]
        while (report := await queue.get()) is not None:
            self.sent += 1
            yield report

    def _queue_report(self, index: int) -> None:
        load = round(self.rng.random() * 0.9, 3)  # never saturated: nothing is exempt
        self._queues[index].put_nowait(pb.LoadReport(id=self.backend_id(index), load=load))

    async def drive(self, rate: float, seconds: float) -> int:
        """Hand out ``rate`` reports a second, round robin over the fleet; how many were sent."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent_before = self.sent
        handed = 0
        while (elapsed := loop.time() - start) < seconds:
            due = int(rate * elapsed) - handed
            for _ in range(max(0, due)):
                self._queue_report(self._next)
                self._next = (self._next + 1) % self.count
            handed += max(0, due)
            await asyncio.sleep(_TICK)
        return self.sent - sent_before

    async def stop(self) -> None:
        """End every stream (its generator returns), then wait for the LB's answers."""
        for queue in self._queues:
            queue.put_nowait(None)
        if self._calls:
            _, pending = await asyncio.wait(self._calls, timeout=10)
            for call in pending:
                call.cancel()
            for call in self._calls:
                with contextlib.suppress(BaseException):
                    await call
        await self._channels.close()


@contextlib.asynccontextmanager
async def _lb_and_fleet(
    build: LbBuild, log_dir: Path, label: str, size: int
) -> AsyncIterator[tuple[ServerProcess, SimulatedFleet]]:
    """A fresh LB of ``build`` and ``size`` registered, streaming backends; both stopped after."""
    lb = build.start(log_dir, label)
    fleet = SimulatedFleet(f"127.0.0.1:{lb.port}", size)
    try:
        await fleet.start()
        yield lb, fleet
    finally:
        await fleet.stop()
        lb.stop()


async def _measure_reports(
    build: LbBuild, log_dir: Path, config: CostConfig, size: int
) -> tuple[float, int]:
    """LB CPU microseconds per streamed report with ``size`` backends, and reports counted."""
    async with _lb_and_fleet(build, log_dir, f"reports-{size}", size) as (lb, fleet):
        await fleet.drive(config.report_rate, config.warmup)
        cpu_before = process_cpu_seconds(lb.pid)
        sent = await fleet.drive(config.report_rate, config.seconds)
        cpu = process_cpu_seconds(lb.pid) - cpu_before
    return cpu * 1e6 / max(1, sent), sent


def getbackend_latencies(target: str, rate: float, seconds: float) -> tuple[list[float], int]:
    """GetBackend at ``rate`` calls/s for ``seconds``: latencies (ms) and errors.

    Runs in a process of its own (see :func:`_measure_getbackend`), so the
    latencies are the LB's and not the simulated fleet's event loop's.
    """
    return asyncio.run(_getbackend_calls(target, rate, seconds))


async def _getbackend_calls(target: str, rate: float, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    async with aio.insecure_channel(target) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)

        async def one_call(number: int) -> None:
            nonlocal errors
            began = time.perf_counter()
            try:
                await stub.GetBackend(
                    pb.ServerRequest(client_id=f"c{number % 16}", service_name=SERVICE), timeout=10
                )
            except aio.AioRpcError:
                errors += 1
                return
            latencies.append((time.perf_counter() - began) * 1e3)

        await one_call(-1)  # connect
        latencies.clear()
        loop = asyncio.get_running_loop()
        start, issued, tasks = loop.time(), 0, []
        while (elapsed := loop.time() - start) < seconds:
            while issued < rate * elapsed:
                tasks.append(asyncio.ensure_future(one_call(issued)))
                issued += 1
            await asyncio.sleep(_TICK / 2)
        await asyncio.gather(*tasks)
    return latencies, errors


async def _measure_getbackend(
    build: LbBuild, log_dir: Path, config: CostConfig
) -> tuple[float, float, int, float]:
    """GetBackend p50/p99 (ms), errors and LB CPU share while the large fleet reports at 1 Hz."""
    loop = asyncio.get_running_loop()
    async with _lb_and_fleet(build, log_dir, "getbackend", config.large_fleet) as (lb, fleet):
        target = f"127.0.0.1:{lb.port}"
        rate = float(config.large_fleet)  # every backend once a second
        await fleet.drive(rate, config.warmup)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            await loop.run_in_executor(pool, getbackend_latencies, target, 1.0, 0.1)  # warm
            cpu_before, wall_before = process_cpu_seconds(lb.pid), time.monotonic()
            calls = loop.run_in_executor(
                pool, getbackend_latencies, target, config.getbackend_rate, config.seconds
            )
            _, (latencies, errors) = await asyncio.gather(fleet.drive(rate, config.seconds), calls)
            share = (process_cpu_seconds(lb.pid) - cpu_before) / (time.monotonic() - wall_before)
    if not latencies:
        return float("nan"), float("nan"), errors, share
    return percentile(latencies, 50), percentile(latencies, 99), errors, share


@dataclass
class _Watchers:
    """Raw WatchBackends streams counting messages and bytes (one channel each)."""

    target: str
    count: int
    messages: int = 0
    received: int = 0  # bytes
    full: int = 0

    def __post_init__(self) -> None:
        self._channels = [aio.insecure_channel(self.target) for _ in range(self.count)]
        self._tasks: list[asyncio.Task[None]] = []
        self.first = asyncio.Event()
        self._started = 0

    def start(self) -> None:
        request = pb.WatchRequest(
            client_id="bench", service_name=SERVICE, accept_deltas=True
        ).SerializeToString()
        for channel in self._channels:
            call = channel.unary_stream(
                WATCH_METHOD, request_serializer=None, response_deserializer=None
            )
            self._tasks.append(asyncio.ensure_future(self._consume(call(request))))

    async def _consume(self, stream: aio.UnaryStreamCall[bytes, bytes]) -> None:
        first = True
        async for raw in stream:
            if first:
                first = False
                self._started += 1
                if self._started == self.count:
                    self.first.set()
            self.messages += 1
            self.received += len(raw)
            if pb.BackendSet.FromString(raw).full:
                self.full += 1

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        for channel in self._channels:
            await channel.close(None)


async def _measure_watch(
    build: LbBuild, log_dir: Path, config: CostConfig
) -> tuple[float, float, float, int]:
    """LB CPU share, bytes per push, pushes/s per subscriber, full pushes (watch case)."""
    async with _lb_and_fleet(build, log_dir, "watch", config.watch_fleet) as (lb, fleet):
        watchers = _Watchers(f"127.0.0.1:{lb.port}", config.watchers)
        try:
            watchers.start()
            return await _watch_window(lb, fleet, watchers, config)
        finally:
            await watchers.stop()


async def _watch_window(
    lb: ServerProcess, fleet: SimulatedFleet, watchers: _Watchers, config: CostConfig
) -> tuple[float, float, float, int]:
    """Drive the fleet at 1 Hz per backend; measure the LB and the pushes over the window."""
    driving = asyncio.ensure_future(fleet.drive(float(config.watch_fleet), 24 * 3600.0))
    try:
        # An overloaded LB may take long to greet every subscriber: go on after a while.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(watchers.first.wait(), 60)
        await asyncio.sleep(config.warmup)
        messages, size, full = watchers.messages, watchers.received, watchers.full
        cpu_before, wall_before = process_cpu_seconds(lb.pid), time.monotonic()
        await asyncio.sleep(config.seconds)
        cpu = process_cpu_seconds(lb.pid) - cpu_before
        wall = time.monotonic() - wall_before
        pushes, pushed = watchers.messages - messages, watchers.received - size
        full_pushes = watchers.full - full
    finally:
        driving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driving
    return cpu / wall, pushed / max(1, pushes), pushes / wall / config.watchers, full_pushes


async def _one_run(build: LbBuild, log_dir: Path, config: CostConfig, repeat: int) -> CostRun:
    run = CostRun(build.name, repeat)
    run.cpu_us_per_report_small, run.reports_small = await _measure_reports(
        build, log_dir, config, config.small_fleet
    )
    run.cpu_us_per_report_large, run.reports_large = await _measure_reports(
        build, log_dir, config, config.large_fleet
    )
    (
        run.getbackend_p50_ms,
        run.getbackend_p99_ms,
        run.getbackend_errors,
        run.getbackend_lb_cpu_share,
    ) = await _measure_getbackend(build, log_dir, config)
    (
        run.watch_cpu_share,
        run.watch_bytes_per_push,
        run.watch_pushes_per_s,
        run.watch_full_pushes,
    ) = await _measure_watch(build, log_dir, config)
    return run


async def run_lb_cost_bench(config: CostConfig, log_dir: Path | None = None) -> list[CostRun]:
    """Every case against each build, alternating builds, ``config.repeat`` times."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="lookaside-lb-cost-"))
    builds = [LbBuild("after", flags=config.after_flags)]
    if config.baseline:
        source = export_source(
            config.baseline, Path(tempfile.mkdtemp(prefix="lookaside-baseline-"))
        )
        builds.append(LbBuild("before", pythonpath=source))
    runs = []
    for repeat in range(config.repeat):
        order = builds if repeat % 2 == 0 else builds[::-1]
        for build in order:
            runs.append(await _one_run(build, log_dir, config, repeat))
    return runs


def as_json(runs: Sequence[CostRun]) -> list[dict[str, object]]:
    return [{**asdict(r), "cpu_ratio": r.cpu_ratio} for r in runs]


__all__ = [
    "BASELINE_REF",
    "FIGURES",
    "CostConfig",
    "CostRun",
    "as_json",
    "medians",
    "run_lb_cost_bench",
]
