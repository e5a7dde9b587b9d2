"""``lookaside bench-replica-cost``: what replication over etcd adds to each report.

Three set-ups, in turn (the order rotating), ``repeat`` times, in one run on one
machine:

* ``lone`` — one ``lookaside lb --store memory`` fed the whole fleet at the
  whole report rate;
* ``lone_share`` — one ``lookaside lb --store memory`` fed what one replica is
  fed: one part of the fleet at ``1 / replicas`` of the rate, over the same
  connections;
* ``replicas`` — ``replicas`` x ``lookaside lb --store etcd://...`` over a real
  local etcd (started here, one member, its own temporary data dir).

The fleet is simulated (raw ``RegisterBackend`` + ``StreamLoad`` streams from
:mod:`lookaside.bench.lb_cost`) and cut into ``replicas`` parts of the same
size with the same connections each; in the ``replicas`` set-up part *i* talks
to replica *i*, in ``lone`` every part talks to the lone LB. Over the measured
window each LB process's own CPU time (``/proc/<pid>/stat``) is divided by the
reports it ingested; the figure for the replicas is their CPU summed over the
reports they ingested together, i.e. the cost per report *per replica*, and it
includes what replication costs a replica: writing its batched loads, decoding
the other replicas' batches from its etcd watch and applying them to its view.

Why two lone set-ups: on this stack a streamed report costs an LB less the
more reports arrive together (gRPC and the event loop batch the reads), so a
replica, hearing a third of the reports, pays more per report than a lone LB
hearing all of them, with or without etcd. ``lone`` answers "what does a
report cost here against one big LB"; ``lone_share`` holds the ingress equal
and leaves the replication overhead alone.

The goal (issue: "3 replicas + etcd: CPU per report per replica vs a lone
in-memory LB") is a ratio of at most :data:`GOAL`. etcd's raft writes per
second (``etcd_server_proposals_committed_total``) and its CPU share are
printed alongside: they must not follow the report rate (see the cost model in
``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lookaside.bench.etcd_cluster import EtcdCluster
from lookaside.bench.fastpath import process_cpu_seconds
from lookaside.bench.lb_fleet import SimulatedFleet
from lookaside.bench.metrics import median_figures
from lookaside.client.admin import list_backends
from lookaside.procs import ServerProcess, stop_all

#: The issue's floor: replication may cost each replica at most this much more per report.
GOAL = 1.5
SETUPS = ("lone", "lone_share", "replicas")
BASELINES = ("lone", "lone_share")  # what the replicas are compared with
#: Flags both set-ups get: a load-aware policy (every report updates the picker), every
#: report applied (no budget), leases that outlive a slow start on a busy machine.
LB_FLAGS = ("--policy", "least_load", "--ttl", "10", "--report-budget", "0")
_JOIN_TIMEOUT = 60.0  # seconds for every replica to list the whole fleet


@dataclass(frozen=True)
class ReplicaCostConfig:
    """What ``lookaside bench-replica-cost`` measures; every default in one place."""

    replicas: int = 3
    fleet: int = 300  # simulated backends, spread evenly over the replicas
    report_rate: float = 900.0  # total streamed reports per second, the same in both set-ups
    seconds: float = 5.0  # measured window
    warmup: float = 2.0  # seconds of reports before the window opens
    repeat: int = 3

    def __post_init__(self) -> None:
        if self.replicas < 2:
            raise ValueError("--replicas must be at least 2")
        if self.fleet < self.replicas:
            raise ValueError("--fleet must be at least --replicas (one backend per replica)")
        if min(self.report_rate, self.seconds) <= 0 or self.warmup < 0 or self.repeat < 1:
            raise ValueError("--report-rate, --seconds and --repeat must be positive")


@dataclass
class SetupRun:
    """One set-up's figures from one repeat."""

    setup: str
    repeat: int
    reports: int = 0
    cpu_seconds: float = 0.0  # of the LB process(es), summed
    etcd_writes_per_s: float = 0.0
    etcd_cpu_share: float = 0.0  # of one core

    @property
    def cpu_us_per_report(self) -> float:
        return self.cpu_seconds * 1e6 / max(1, self.reports)


def _parts(targets: Sequence[str], config: ReplicaCostConfig) -> list[SimulatedFleet]:
    """The fleet cut into ``config.replicas`` parts, part *i* on ``targets[i % len]``."""
    parts, first = [], 0
    for n in range(config.replicas):
        count = config.fleet // config.replicas + (n < config.fleet % config.replicas)
        parts.append(SimulatedFleet(targets[n % len(targets)], count, first=first))
        first += count
    return parts


def _etcd_writes(etcd: EtcdCluster | None) -> float:
    if etcd is None:
        return 0.0
    return etcd.members[0].metrics().get("etcd_server_proposals_committed_total", 0.0)


def _etcd_cpu(etcd: EtcdCluster | None) -> float:
    proc = etcd.members[0].proc if etcd is not None else None
    return process_cpu_seconds(proc.pid) if proc is not None else 0.0


async def _wait_whole_view(lbs: Sequence[ServerProcess], size: int) -> None:
    """Every LB lists the whole fleet: the replicas really share one membership."""
    deadline = time.monotonic() + _JOIN_TIMEOUT
    for lb in lbs:
        while True:
            listed = len((await list_backends(f"127.0.0.1:{lb.port}", timeout=10)).backends)
            if listed == size:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{lb.name} lists {listed} of {size} backends")
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _lbs(
    setup: str, config: ReplicaCostConfig, etcd: EtcdCluster, log_dir: Path, repeat: int
) -> AsyncIterator[list[ServerProcess]]:
    if setup != "replicas":
        args = [["lb", "--port", "0", "--store", "memory", *LB_FLAGS]]
    else:
        store = ["--store", etcd.url, "--store-prefix", f"/replica-cost-{repeat}/"]
        args = [["lb", "--port", "0", *store, *LB_FLAGS]] * config.replicas
    lbs = [ServerProcess(f"{setup}-{repeat}-{n}", a, log_dir) for n, a in enumerate(args)]
    try:
        for lb in lbs:
            lb.start()
        for lb in lbs:
            lb.wait_listening()
        yield lbs
    finally:
        stop_all(lbs)


async def _drive(parts: Sequence[SimulatedFleet], rate: float, seconds: float) -> int:
    share = rate / len(parts)
    return sum(await asyncio.gather(*(p.drive(share, seconds) for p in parts)))


async def measure(
    setup: str, config: ReplicaCostConfig, etcd: EtcdCluster, log_dir: Path, repeat: int
) -> SetupRun:
    """One set-up: start its LB(s), join the fleet, drive it, measure the window."""
    run = SetupRun(setup, repeat)
    watched = etcd if setup == "replicas" else None
    async with _lbs(setup, config, etcd, log_dir, repeat) as lbs:
        parts = _parts([f"127.0.0.1:{lb.port}" for lb in lbs], config)
        rate = config.report_rate
        if setup == "lone_share":
            parts, rate = parts[:1], rate / config.replicas
        try:
            for part in parts:
                await part.start()
            await _wait_whole_view(lbs, sum(part.count for part in parts))
            await _drive(parts, rate, config.warmup)
            cpu0 = sum(process_cpu_seconds(lb.pid) for lb in lbs)
            writes0, etcd_cpu0, wall0 = _etcd_writes(watched), _etcd_cpu(watched), time.monotonic()
            run.reports = await _drive(parts, rate, config.seconds)
            run.cpu_seconds = sum(process_cpu_seconds(lb.pid) for lb in lbs) - cpu0
            wall = time.monotonic() - wall0
            run.etcd_writes_per_s = (_etcd_writes(watched) - writes0) / wall
            run.etcd_cpu_share = (_etcd_cpu(watched) - etcd_cpu0) / wall
        finally:
            for part in parts:
                await part.stop()
    return run


async def run_replica_cost_bench(
    config: ReplicaCostConfig, directory: Path | None = None
) -> list[SetupRun]:
    """Every set-up, rotating which goes first, ``config.repeat`` times, over one etcd."""
    directory = directory or Path(tempfile.mkdtemp(prefix="lookaside-replica-cost-"))
    runs = []
    with EtcdCluster(directory / "etcd") as etcd:
        for repeat in range(config.repeat):
            shift = repeat % len(SETUPS)
            for setup in SETUPS[shift:] + SETUPS[:shift]:
                runs.append(await measure(setup, config, etcd, directory / "logs", repeat))
    return runs


def medians(runs: Sequence[SetupRun], setup: str) -> dict[str, float]:
    figures = ("cpu_us_per_report", "reports", "etcd_writes_per_s", "etcd_cpu_share")
    return median_figures((r for r in runs if r.setup == setup), figures)


def ratios(runs: Sequence[SetupRun], baseline: str) -> list[float]:
    """Replicas / ``baseline`` CPU per report, one per repeat (measured back to back)."""
    by_repeat: dict[int, dict[str, SetupRun]] = {}
    for run in runs:
        by_repeat.setdefault(run.repeat, {})[run.setup] = run
    return [
        trio["replicas"].cpu_us_per_report / max(trio[baseline].cpu_us_per_report, 1e-9)
        for _, trio in sorted(by_repeat.items())
        if {"replicas", baseline} <= set(trio)
    ]


def as_json(runs: Sequence[SetupRun]) -> list[dict[str, object]]:
    return [{**asdict(r), "cpu_us_per_report": r.cpu_us_per_report} for r in runs]


__all__ = [
    "BASELINES",
    "GOAL",
    "SETUPS",
    "ReplicaCostConfig",
    "SetupRun",
    "as_json",
    "medians",
    "ratios",
    "run_replica_cost_bench",
]
