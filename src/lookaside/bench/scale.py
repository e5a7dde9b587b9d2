"""The seed's two scale tools: ``scale-servers`` (N backends) and ``scale-clients`` (N clients).

``scale-servers`` starts ``backend1..backendN`` as child processes of itself and
keeps them until Ctrl-C or SIGTERM, then stops them all; if it is SIGKILLed
instead, the kernel SIGTERMs each child (``PR_SET_PDEATHSIG``, see
:mod:`lookaside.procs`), so no backend is ever orphaned.

``scale-clients`` runs the seed's flow (``GetBackend`` then ``ComputeTask``) from
N concurrent clients against a running LB and summarises what they saw.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table

from lookaside.bench.fleet import BackendSpec, Fleet, numbered_ids
from lookaside.bench.load import SeedFlowClient, WarmConnections, close_all, closed_loop
from lookaside.bench.metrics import RunSummary, summarize
from lookaside.bench.results import jsonable
from lookaside.bench.runner import run_async
from lookaside.client.admin import list_backends
from lookaside.v1 import load_balancer_pb2 as pb

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT: stop the fleet and exit cleanly."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


async def _registered_unless_stopped(fleet: Fleet, timeout: float) -> list[pb.BackendInfo]:
    """Wait for every backend to register, or raise :class:`_Stop` on SIGTERM/SIGINT.

    While the event loop runs, a signal must reach it through the loop: an exception
    raised by a plain signal handler inside a loop callback would be logged and lost.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, on_signal, sig)
    waiting = asyncio.ensure_future(fleet.wait_registered(timeout=timeout))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        stopping.cancel()
    if received:
        waiting.cancel()
        raise _Stop(received[0])
    return waiting.result()


def backends_table(backends: Sequence[pb.BackendInfo], pids: dict[str, int]) -> Table:
    table = Table(title=f"{len(backends)} backends registered")
    table.add_column("id")
    table.add_column("address:port")
    table.add_column("pid", justify="right")
    for backend in backends:
        table.add_row(backend.id, f"{backend.address}:{backend.port}", str(pids.get(backend.id)))
    return table


def serve_backends(
    lb_target: str,
    count: int,
    template: BackendSpec,
    log_dir: Path,
    base_port: int = 0,
    timeout: float = 60.0,
    console: Console | None = None,
) -> int:
    """Start ``backend1..backendN``, show them, hold them until SIGTERM/SIGINT, stop them."""
    console = console or Console()
    fleet = Fleet(log_dir, lb_target=lb_target)
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        for index, backend_id in enumerate(numbered_ids(count)):
            port = base_port + index if base_port else 0
            fleet.spawn(replace(template, id=backend_id, port=port))
        backends = run_async(_registered_unless_stopped(fleet, timeout))
        for sig in STOP_SIGNALS:  # the loop left the default handlers behind
            signal.signal(sig, _raise_stop)
        order = {backend_id: i for i, backend_id in enumerate(numbered_ids(count))}
        backends.sort(key=lambda b: order[b.id])
        console.print(backends_table(backends, fleet.pids()))
        console.print(f"logs in {log_dir}; Ctrl-C or SIGTERM stops them all", highlight=False)
        while True:  # until a signal raises _Stop
            time.sleep(0.5)
            for backend_id, process in list(fleet.backends.items()):
                if not process.alive():
                    console.print(f"[red]{backend_id} exited; see {process.log_path}[/]")
                    fleet.backends.pop(backend_id)
    except _Stop as why:
        console.print(f"{why}: stopping {len(fleet.backends)} backends")
    finally:
        # Ignore further signals while stopping: a second Ctrl-C must not leave orphans.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        fleet.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


async def _clients_run(
    lb_target: str, clients: int, requests_per_client: int, service: str, timeout: float
) -> RunSummary:
    known = list((await list_backends(lb_target, service)).backends)
    if not known:
        raise ValueError(f"no live backends for service {service!r} at {lb_target}")
    flows = [SeedFlowClient(lb_target, service, f"client{i}") for i in range(1, clients + 1)]
    warm = WarmConnections([lb_target, *(f"{b.address}:{b.port}" for b in known)])
    try:
        await warm.open(flows)
        records, wall = await closed_loop(flows, requests_per_client, timeout)
    finally:
        await close_all(flows)
        await warm.close()
    return summarize(records, wall_s=wall, backend_ids=[b.id for b in known])


def run_clients(
    lb_target: str,
    clients: int,
    requests_per_client: int = 1,
    service: str = "compute",
    timeout: float = 60.0,
) -> RunSummary:
    """N concurrent clients, each doing the seed's flow ``requests_per_client`` times."""
    if clients < 1 or requests_per_client < 1:
        raise ValueError("need at least one client and one request per client")
    return run_async(_clients_run(lb_target, clients, requests_per_client, service, timeout))


def write_summary_json(summary: RunSummary, path: Path, **context: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jsonable({**context, **summary.to_dict()})
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
