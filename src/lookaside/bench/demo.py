"""``lookaside demo``: the whole system in one command.

Starts an LB and three backends as real processes on loopback, sends a few
requests through :class:`~lookaside.client.LookasideClient`, prints who served
what, and stops everything.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from lookaside.client.admin import wait_for_backends
from lookaside.client.lookaside_client import LookasideClient
from lookaside.procs import ServerProcess, stop_all


async def _send(lb_target: str, words: list[str]) -> list[tuple[str, str, str, float]]:
    async with LookasideClient(lb_target) as client:
        rows = []
        for word in words:
            reply = await client.compute(word)
            rows.append((word, reply.result, reply.backend_id, reply.latency_ms))
        return rows


def run_demo(
    policy: str = "round_robin", backends: int = 3, requests: int = 9, keep_logs: bool = False
) -> int:
    """Run the demo; the log folder is removed afterwards unless asked or the demo failed."""
    console = Console()
    log_dir = Path(tempfile.mkdtemp(prefix="lookaside-demo-"))
    lb = ServerProcess("lb", ["lb", "--port", "0", "--policy", policy], log_dir).start()
    processes = [lb]
    succeeded = False
    try:
        lb_target = f"127.0.0.1:{lb.wait_listening()}"
        console.print(f"LB ({policy}) listening on [bold]{lb_target}[/]")
        for i in range(1, backends + 1):
            args = ["backend", "--lb", lb_target, "--id", f"backend{i}", "--work-ms", "50"]
            processes.append(ServerProcess(f"backend{i}", args, log_dir).start())
        asyncio.run(wait_for_backends(lb_target, backends))
        console.print(f"{backends} backends registered")
        words = [f"request-{i}" for i in range(1, requests + 1)]
        rows = asyncio.run(_send(lb_target, words))
        table = Table(title="Who served what")
        for column in ("input", "result", "backend", "latency ms"):
            table.add_column(column)
        for word, result, backend, latency in rows:
            table.add_row(word, result, backend, f"{latency:.1f}")
        console.print(table)
        usage = Counter(backend for _, _, backend, _ in rows)
        console.print(
            "requests per backend: " + ", ".join(f"{k}={v}" for k, v in sorted(usage.items()))
        )
        succeeded = True
        return 0
    finally:
        stop_all(processes[1:])  # backends first, so they can deregister
        lb.stop()
        if succeeded and not keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            console.print(f"logs: {log_dir}")
