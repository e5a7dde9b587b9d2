"""``lookaside bench-fastpath``: what taking the LB off the per-request path buys.

Two ways to send the same requests to the same backends, measured side by side
in one run, alternating (A B A B ...) so drift on a shared machine hits both:

* ``lb_per_request`` — the seed's flow: ``GetBackend`` then ``ComputeTask``;
* ``fast_path`` — ``LookasideClient`` with ``ClientConfig(fast_path=True)``: the
  client subscribes to ``WatchBackends`` and picks locally, then ``ComputeTask``.

Reported per mode: median, p99, throughput, and the LB's CPU seconds per 1,000
requests (read from ``/proc/<pid>/stat`` before and after), which is the cost
that grows with traffic in the first mode and not in the second.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lookaside.bench.fleet import BackendSpec, Fleet, numbered_ids
from lookaside.bench.load import (
    FailoverClient,
    SeedFlowClient,
    WarmConnections,
    close_all,
    closed_loop,
)
from lookaside.bench.metrics import median_figures, summarize
from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.v1 import load_balancer_pb2 as pb

MODES = ("lb_per_request", "fast_path")
FAST_PATH_CONFIG = replace(LOOKASIDE_CLIENT_DEFAULTS, fast_path=True, report_stats=False)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


class FastPathFlow(FailoverClient):
    """:meth:`LookasideClient.compute` with ``fast_path=True``: local picks, then the call."""

    def __init__(self, lb_target: str) -> None:
        super().__init__(lb_target, config=FAST_PATH_CONFIG)

    async def connect(self) -> None:
        await self._client.wait_fast_path()


@dataclass(frozen=True)
class ModeRun:
    mode: str
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    throughput_rps: float
    lb_cpu_ms_per_1k: float


async def _one_run(
    fleet: Fleet,
    backends: Sequence[pb.BackendInfo],
    mode: str,
    clients: int,
    requests_per_client: int,
) -> ModeRun:
    assert fleet.lb is not None
    targets = [fleet.lb_target, *(f"{b.address}:{b.port}" for b in backends)]
    flows: Sequence[SeedFlowClient | FastPathFlow] = [
        SeedFlowClient(fleet.lb_target)
        if mode == "lb_per_request"
        else FastPathFlow(fleet.lb_target)
        for _ in range(clients)
    ]
    warm = WarmConnections(targets)
    try:
        await warm.open(flows)
        cpu_before = process_cpu_seconds(fleet.lb.pid)
        records, wall = await closed_loop(flows, requests_per_client, timeout=10.0)
        cpu = process_cpu_seconds(fleet.lb.pid) - cpu_before
    finally:
        await close_all(flows)
        await warm.close()
    summary = summarize(records, wall)
    return ModeRun(
        mode=mode,
        requests=len(records),
        errors=summary.errors,
        p50_ms=summary.response_ms.p50_ms,
        p99_ms=summary.response_ms.p99_ms,
        throughput_rps=summary.throughput_rps,
        lb_cpu_ms_per_1k=cpu * 1e6 / max(1, len(records)),
    )


async def run_fastpath_bench(
    servers: int = 4,
    clients: int = 16,
    requests_per_client: int = 200,
    repeat: int = 3,
    policy: str = "round_robin",
    log_dir: Path | None = None,
) -> list[ModeRun]:
    """Start an LB and backends, then alternate the two modes ``repeat`` times."""
    fleet = Fleet(log_dir or Path(tempfile.mkdtemp(prefix="lookaside-fastpath-")))
    try:
        fleet.start_lb(policy, ["--watch-min-gap", "0.2"])
        fleet.spawn_all([BackendSpec(i) for i in numbered_ids(servers)])
        backends = await fleet.wait_registered()
        # Warm-up: one short run of each, not counted.
        for mode in MODES:
            await _one_run(fleet, backends, mode, clients, 10)
        runs = []
        for _ in range(repeat):
            for mode in MODES:
                runs.append(await _one_run(fleet, backends, mode, clients, requests_per_client))
        return runs
    finally:
        fleet.stop()


def medians(runs: Sequence[ModeRun], mode: str) -> dict[str, float]:
    """Median of every figure over the runs of one mode."""
    figures = ("p50_ms", "p99_ms", "throughput_rps", "lb_cpu_ms_per_1k", "errors")
    return median_figures((r for r in runs if r.mode == mode), figures)


__all__ = ["MODES", "ModeRun", "medians", "process_cpu_seconds", "run_fastpath_bench"]
