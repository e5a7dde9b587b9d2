"""``lookaside bench-lb-cost``: what one LB process pays per report, per pick and per watch push.

The LB runs as a real separate process (``lookaside lb``); the fleet is
simulated as raw gRPC streams in a few generator processes
(:mod:`lookaside.bench.lb_fleet`), so ten thousand backends fit on a small
machine. Watchers are raw ``WatchBackends`` streams that count the bytes they
receive (the wire size of each push) and which pushes were whole sets.

Fair on a small machine: the LB is pinned to one core and everything else (the
generators, the GetBackend caller, the watchers, this process) to the other
cores, so the LB's figures are not those of a process starved by its own load.
Each backend's reports are spread evenly in time (the driver goes round robin
over the fleet every 5 ms), never all at the same instant. CPU is the LB
process's own (``/proc/<pid>/stat``, user + system, every thread) over the
measured window, never wall time.

Cases, each on a fresh LB, printed side by side with the goals of
:data:`GOALS`:

* ``reports`` — CPU per streamed load report at 50, 2,000 and 10,000 backends
  (the same total report rate), and the ratios to the small fleet: flat means a
  report's cost does not grow with the fleet;
* ``getbackend`` — GetBackend p50 / p99 at a fixed call rate while every
  backend of the 2,000 reports once a second (2,000 reports/s ingested);
* ``watch`` — 1,000 backends reporting once a second watched by 100
  subscribers that accept deltas: the LB's CPU share and the bytes per push.

Optionally each case also runs against the LB of a git revision (``before``:
its ``src/`` exported with ``git archive`` and put first on the LB's
``PYTHONPATH``), alternating with the current code, ``repeat`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from grpc import aio

from lookaside.bench.fastpath import process_cpu_seconds
from lookaside.bench.lb_fleet import SERVICE, FleetProcesses, cpu_split, pin
from lookaside.bench.metrics import median_figures, percentile
from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

#: The last revision whose LB rebuilt the picker on every report and pushed whole sets.
BASELINE_REF = "7c65bad"
WATCH_METHOD = "/lookaside.v1.LoadBalancer/WatchBackends"
#: Flags every LB build gets: room for big fleets, leases that outlive slow rounds.
LB_FLAGS = (
    "--policy", "least_load", "--ttl", "120", "--max-backends", "20000",
    "--max-streams", "20000", "--max-message-bytes", "4194304",
)  # fmt: skip
_TICK = 0.005

#: The issue's goals: figure -> (most it may be, how the goal reads).
GOALS: dict[str, tuple[float, str]] = {
    "cpu_ratio": (1.2, "at most 1.2x"),
    "cpu_ratio_huge": (1.2, "at most 1.2x"),
    "getbackend_p99_ms": (10.0, "at most 10 ms"),
    "watch_cpu_share": (0.5, "at most 50 % of one core"),
}


@dataclass(frozen=True)
class CostConfig:
    """What ``lookaside bench-lb-cost`` measures; every default in one place."""

    small_fleet: int = 50
    large_fleet: int = 2000  # also the fleet reporting at 1 Hz in the GetBackend case
    huge_fleet: int = 10000  # 0 = skip the 10,000-backend case
    #: Total reports per second in the ``reports`` case (the same at every fleet size).
    report_rate: float = 1000.0
    getbackend_rate: float = 200.0  # GetBackend calls per second in the ``getbackend`` case
    watch_fleet: int = 1000
    watchers: int = 100
    seconds: float = 5.0  # measured window of each case
    warmup: float = 1.5  # seconds of reports before the window opens
    repeat: int = 3
    generators: int = 2  # processes simulating the fleet
    baseline: str = ""  # git revision of a "before" LB to run alternately; "" = none
    #: Flags for the "after" LB only (the baseline may not know them).
    after_flags: tuple[str, ...] = ("--report-budget", "100000")

    def __post_init__(self) -> None:
        fleets = (self.small_fleet, self.large_fleet, self.watch_fleet, self.watchers)
        if min(fleets) < 1 or self.huge_fleet < 0 or self.generators < 1:
            raise ValueError("fleet sizes, --watchers and --generators must be at least 1")
        if min(self.report_rate, self.getbackend_rate, self.seconds) <= 0 or self.repeat < 1:
            raise ValueError("rates, --seconds and --repeat must be positive")


@dataclass
class CostRun:
    """One build's figures from one repeat."""

    build: str
    repeat: int
    cpu_us_per_report_small: float = 0.0
    cpu_us_per_report_large: float = 0.0
    cpu_us_per_report_huge: float = float("nan")
    reports_small: int = 0
    reports_large: int = 0
    reports_huge: int = 0
    getbackend_p50_ms: float = 0.0
    getbackend_p99_ms: float = 0.0
    getbackend_errors: int = 0
    getbackend_reports_per_s: float = 0.0  # what the LB was sent meanwhile
    getbackend_lb_cpu_share: float = 0.0  # of one core, while ingesting the reports
    watch_cpu_share: float = 0.0  # of one core
    watch_bytes_per_push: float = 0.0
    watch_pushes_per_s: float = 0.0  # per subscriber
    watch_full_pushes: int = 0

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_us_per_report_large / max(self.cpu_us_per_report_small, 1e-9)

    @property
    def cpu_ratio_huge(self) -> float:
        return self.cpu_us_per_report_huge / max(self.cpu_us_per_report_small, 1e-9)


FIGURES = (
    "cpu_us_per_report_small",
    "cpu_us_per_report_large",
    "cpu_us_per_report_huge",
    "cpu_ratio",
    "cpu_ratio_huge",
    "getbackend_p50_ms",
    "getbackend_p99_ms",
    "getbackend_reports_per_s",
    "getbackend_lb_cpu_share",
    "watch_cpu_share",
    "watch_bytes_per_push",
    "watch_pushes_per_s",
)


def medians(runs: Sequence[CostRun], build: str) -> dict[str, float]:
    return median_figures((r for r in runs if r.build == build), FIGURES)


def met(figure: str, value: float) -> bool | None:
    """Whether ``value`` meets the goal for ``figure``; None when it has no goal."""
    goal = GOALS.get(figure)
    if goal is None:
        return None
    return value == value and value <= goal[0]  # NaN (not measured) meets nothing


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
    cpus: Collection[int] = ()  # pinned to these cores ("": not pinned)

    def start(self, log_dir: Path, label: str) -> ServerProcess:
        env = {"PYTHONPATH": str(self.pythonpath)} if self.pythonpath else {}
        args = ["lb", "--port", "0", *LB_FLAGS, *self.flags]
        process = ServerProcess(f"lb-{self.name}-{label}", args, log_dir, env).start()
        if self.cpus:
            pin(process.pid, self.cpus)  # before it starts its threads: they inherit it
        process.wait_listening()
        if self.cpus:
            pin(process.pid, self.cpus)  # and any thread made before the first pin
        return process


@contextlib.asynccontextmanager
async def _lb_and_fleet(
    build: LbBuild, log_dir: Path, config: CostConfig, label: str, size: int
) -> AsyncIterator[tuple[ServerProcess, FleetProcesses]]:
    """A fresh LB of ``build`` and ``size`` registered, streaming backends; both stopped after."""
    lb = build.start(log_dir, label)
    _, load_cpus = cpu_split()
    fleet = FleetProcesses(f"127.0.0.1:{lb.port}", size, config.generators, load_cpus)
    try:
        await fleet.ready()
        yield lb, fleet
    finally:
        await fleet.stop()
        lb.stop()


async def _measure_reports(
    build: LbBuild, log_dir: Path, config: CostConfig, size: int
) -> tuple[float, int]:
    """LB CPU microseconds per streamed report with ``size`` backends, and reports counted."""
    async with _lb_and_fleet(build, log_dir, config, f"reports-{size}", size) as (lb, fleet):
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
            await asyncio.sleep(_TICK)
        await asyncio.gather(*tasks)
    return latencies, errors


def _pinned(cpus: Collection[int]) -> None:
    os.sched_setaffinity(0, set(cpus))


async def _measure_getbackend(
    build: LbBuild, log_dir: Path, config: CostConfig
) -> tuple[float, float, int, float, float]:
    """GetBackend p50/p99 (ms), errors, reports/s sent and LB CPU share (large fleet at 1 Hz)."""
    loop = asyncio.get_running_loop()
    _, load_cpus = cpu_split()
    size = config.large_fleet
    async with _lb_and_fleet(build, log_dir, config, "getbackend", size) as (lb, fleet):
        target = f"127.0.0.1:{lb.port}"
        rate = float(size)  # every backend once a second
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, context, _pinned, (load_cpus,)) as pool:
            await loop.run_in_executor(pool, getbackend_latencies, target, 1.0, 0.1)  # warm
            await fleet.drive(rate, config.warmup)
            cpu_before, wall_before = process_cpu_seconds(lb.pid), time.monotonic()
            calls = loop.run_in_executor(
                pool, getbackend_latencies, target, config.getbackend_rate, config.seconds
            )
            sent, (latencies, errors) = await asyncio.gather(
                fleet.drive(rate, config.seconds), calls
            )
            wall = time.monotonic() - wall_before
            share = (process_cpu_seconds(lb.pid) - cpu_before) / wall
    if not latencies:
        return float("nan"), float("nan"), errors, sent / wall, share
    return percentile(latencies, 50), percentile(latencies, 99), errors, sent / wall, share


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
    size = config.watch_fleet
    async with _lb_and_fleet(build, log_dir, config, "watch", size) as (lb, fleet):
        watchers = _Watchers(f"127.0.0.1:{lb.port}", config.watchers)
        try:
            watchers.start()
            # An overloaded LB may take long to greet every subscriber: go on after a while.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(watchers.first.wait(), 60)
            return await _watch_window(lb, fleet, watchers, config)
        finally:
            await watchers.stop()


async def _watch_window(
    lb: ServerProcess, fleet: FleetProcesses, watchers: _Watchers, config: CostConfig
) -> tuple[float, float, float, int]:
    """Drive the fleet at 1 Hz per backend; measure the LB and the pushes over the window."""
    driving = asyncio.ensure_future(
        fleet.drive(float(config.watch_fleet), config.warmup + config.seconds + 0.5)
    )
    await asyncio.sleep(config.warmup)
    messages, size, full = watchers.messages, watchers.received, watchers.full
    cpu_before, wall_before = process_cpu_seconds(lb.pid), time.monotonic()
    await asyncio.sleep(config.seconds)
    cpu = process_cpu_seconds(lb.pid) - cpu_before
    wall = time.monotonic() - wall_before
    pushes, pushed = watchers.messages - messages, watchers.received - size
    full_pushes = watchers.full - full
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
    if config.huge_fleet:
        run.cpu_us_per_report_huge, run.reports_huge = await _measure_reports(
            build, log_dir, config, config.huge_fleet
        )
    (
        run.getbackend_p50_ms,
        run.getbackend_p99_ms,
        run.getbackend_errors,
        run.getbackend_reports_per_s,
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
    lb_cpus, load_cpus = cpu_split()
    pinned = lb_cpus != load_cpus
    builds = [LbBuild("after", flags=config.after_flags, cpus=lb_cpus if pinned else ())]
    if config.baseline:
        source = export_source(
            config.baseline, Path(tempfile.mkdtemp(prefix="lookaside-baseline-"))
        )
        builds.append(LbBuild("before", pythonpath=source, cpus=builds[0].cpus))
    mine = os.sched_getaffinity(0)
    if pinned:
        pin(os.getpid(), load_cpus)  # this process (watchers, driver) stays off the LB's core
    try:
        runs = []
        for repeat in range(config.repeat):
            order = builds if repeat % 2 == 0 else builds[::-1]
            for build in order:
                runs.append(await _one_run(build, log_dir, config, repeat))
    finally:
        pin(os.getpid(), mine)
    return runs


def as_json(runs: Sequence[CostRun]) -> list[dict[str, object]]:
    return [
        {**asdict(r), "cpu_ratio": r.cpu_ratio, "cpu_ratio_huge": r.cpu_ratio_huge} for r in runs
    ]


__all__ = [
    "BASELINE_REF",
    "FIGURES",
    "GOALS",
    "CostConfig",
    "CostRun",
    "as_json",
    "medians",
    "met",
    "run_lb_cost_bench",
]
