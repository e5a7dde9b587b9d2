"""What LB replicas cost etcd: writes per second by fleet size, replicas and report rate.

Run ``python -m lookaside.bench.store_cost``. It starts a real etcd on loopback,
then for each case R LB replicas (``lookaside lb`` child processes) and N
backends (real :class:`~lookaside.backend.reporter.LoadReporter` streams in this
process, each registered with one replica) reporting H times a second. After a
warm-up it reads etcd's own counters over a window and prints, per case:

* ``writes/s`` — raft proposals etcd committed (every put, transaction, delete
  and lease grant is one), the figure the cost model in ``docs/ARCHITECTURE.md``
  predicts: ``R / load_share_interval`` plus membership churn;
* ``keepalives/s`` — lease keepalive messages (not raft writes in etcd 3.4):
  ``R x 3 / lease TTL``;
* ``reports/s`` — what the backends sent, to show the writes do not follow it.

Then the time from sending ``RegisterBackend`` to replica A until replica B
lists the backend (``ListBackends`` polled), median and maximum over 20.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lookaside import channels
from lookaside.backend.reporter import LoadReporter
from lookaside.bench.etcd_cluster import EtcdCluster
from lookaside.lb.store import StoreConfig
from lookaside.procs import ServerProcess, stop_all
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

TTL = 5.0  # the LB default: etcd leases of 5 s, a keepalive every 5/3 s


@dataclass(frozen=True)
class Case:
    replicas: int
    backends: int
    report_hz: float


@dataclass(frozen=True)
class Figures:
    case: Case
    writes_per_second: float
    keepalives_per_second: float
    reports_per_second: float


def _counters(etcd: EtcdCluster) -> tuple[float, float]:
    metrics = etcd.members[0].metrics()
    return (
        metrics.get("etcd_server_proposals_committed_total", 0.0),
        metrics.get("lease_keepalives_received", 0.0),
    )


def _start_replicas(
    etcd: EtcdCluster, count: int, prefix: str, log_dir: Path
) -> list[ServerProcess]:
    # round_robin: the picker ignores load, so what is measured is the store, not rebuilds.
    args = ["lb", "--port", "0", "--policy", "round_robin", "--ttl", f"{TTL:g}"]
    args += ["--store", etcd.url, "--store-prefix", prefix]
    name = prefix.strip("/")
    replicas = [ServerProcess(f"{name}-{n}", args, log_dir).start() for n in range(count)]
    for replica in replicas:
        replica.wait_listening()
    return replicas


async def measure(
    etcd: EtcdCluster, case: Case, warmup: float, window: float, log_dir: Path
) -> Figures:
    prefix = f"/cost-{case.replicas}-{case.backends}-{case.report_hz:g}/"
    replicas = _start_replicas(etcd, case.replicas, prefix, log_dir)
    lb_channels = [channels.dial(f"127.0.0.1:{r.port}") for r in replicas]
    sent = 0

    def make_report(backend_id: str) -> pb.LoadReport:
        nonlocal sent
        sent += 1
        return pb.LoadReport(id=backend_id, load=(sent % 10) / 10)

    def new_reporter(n: int) -> LoadReporter:
        backend_id = f"b{n}"
        return LoadReporter(
            lb_channels[n % case.replicas],
            pb.BackendInfo(id=backend_id, address="127.0.0.1", port=20000 + n),
            lambda: make_report(backend_id),
            interval=1 / case.report_hz,
        )

    reporters = [new_reporter(n) for n in range(case.backends)]
    try:
        for reporter in reporters:
            reporter.start()
        await asyncio.wait_for(asyncio.gather(*(r.registered.wait() for r in reporters)), 60)
        await asyncio.sleep(warmup)
        writes0, keepalives0 = _counters(etcd)
        sent0, started = sent, time.monotonic()
        await asyncio.sleep(window)
        writes1, keepalives1 = _counters(etcd)
        seconds = time.monotonic() - started
        return Figures(
            case,
            (writes1 - writes0) / seconds,
            (keepalives1 - keepalives0) / seconds,
            (sent - sent0) / seconds,
        )
    finally:
        await asyncio.gather(*(r.stop() for r in reporters))
        for channel in lb_channels:
            await channel.close(None)
        stop_all(replicas)


async def visibility(etcd: EtcdCluster, log_dir: Path, count: int = 20) -> list[float]:
    """Seconds from sending RegisterBackend to replica A until replica B lists the backend.

    A answers only once etcd has the record, so this is one etcd write, B's watch,
    and one ``ListBackends`` poll.
    """
    a, b = _start_replicas(etcd, 2, "/visibility/", log_dir)
    delays = []
    try:
        async with (
            channels.dial(f"127.0.0.1:{a.port}") as to_a,
            channels.dial(f"127.0.0.1:{b.port}") as to_b,
        ):
            stub_a, stub_b = pb_grpc.LoadBalancerStub(to_a), pb_grpc.LoadBalancerStub(to_b)
            for n in range(count):
                backend_id = f"probe{n}"
                info = pb.BackendInfo(id=backend_id, address="127.0.0.1", port=30000 + n)
                sent = time.monotonic()
                await stub_a.RegisterBackend(info, timeout=5)
                while True:
                    listed = await stub_b.ListBackends(pb.ListBackendsRequest(), timeout=5)
                    if any(x.id == backend_id for x in listed.backends):
                        break
                delays.append(time.monotonic() - sent)
    finally:
        stop_all([a, b])
    return delays


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part]


async def run(args: argparse.Namespace) -> int:
    cases = [
        Case(int(r), int(n), hz)
        for r in _floats(args.replicas)
        for n in _floats(args.backends)
        for hz in _floats(args.report_hz)
    ]
    with tempfile.TemporaryDirectory() as directory, EtcdCluster(Path(directory)) as etcd:
        log_dir = Path(directory) / "logs"
        share = StoreConfig().load_share_interval
        print(f"etcd {etcd.url}; LB ttl {TTL:g}s, load shared every {share:g}s")
        print(f"{'replicas':>8} {'backends':>8} {'report Hz':>9} {'reports/s':>10} "
              f"{'etcd writes/s':>13} {'keepalives/s':>12} {'model writes/s':>14}")  # fmt: skip
        for case in cases:
            figures = await measure(etcd, case, args.warmup, args.seconds, log_dir)
            model = case.replicas / share
            print(
                f"{case.replicas:>8} {case.backends:>8} {case.report_hz:>9g} "
                f"{figures.reports_per_second:>10.0f} {figures.writes_per_second:>13.1f} "
                f"{figures.keepalives_per_second:>12.1f} {model:>14.1f}"
            )
        delays = await visibility(etcd, log_dir)
        print(
            f"RegisterBackend sent to replica A until replica B lists it: median "
            f"{statistics.median(delays) * 1000:.1f} ms, max {max(delays) * 1000:.1f} ms "
            f"over {len(delays)}"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lookaside.bench.store_cost",
        description="Measure etcd writes per second for LB replicas (starts its own etcd).",
    )
    parser.add_argument("--replicas", default="1,3", help="replica counts, comma-separated")
    parser.add_argument("--backends", default="50,200", help="fleet sizes, comma-separated")
    parser.add_argument("--report-hz", default="1,5", help="report rates, comma-separated")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring window")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 130


if __name__ == "__main__":
    sys.exit(main())
