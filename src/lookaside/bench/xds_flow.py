"""The lab's ``xds`` flow from the parent's side: start the stock client, hand it the plan.

The client itself is :mod:`lookaside.bench.stock_xds_flow`, a child process
that imports only ``grpc`` and code generated from the ``.proto`` (it reports
which lookaside modules it loaded, and :meth:`StockXdsFlow.run` refuses any).
It dials ``xds:///SERVICE`` with a bootstrap written by
:func:`lookaside.lb.xds.bootstrap.bootstrap`, so the LB's ADS service is all
it knows. Each request comes back as one JSON line, which becomes a
:class:`~lookaside.bench.metrics.RequestRecord` on the parent's clock: the
child's times are offsets from the moment it received the plan, added to the
moment the parent sent it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from lookaside.bench.load import OnRecord
from lookaside.bench.metrics import RequestRecord
from lookaside.bench.xds_shares import generate_stubs, write_bootstrap

FLOW_SCRIPT = Path(__file__).with_name("stock_xds_flow.py")
#: Seconds to wait for the child's channels to be READY (xDS resources + connections).
READY_TIMEOUT_S = 60.0


def flow_command(stubs: Path) -> list[str]:
    """``python -P stock_xds_flow.py``: -P keeps the script's folder off ``sys.path``."""
    return [sys.executable, "-P", str(FLOW_SCRIPT), "--stubs", str(stubs)]


def record_from(line: dict[str, Any], started: float) -> RequestRecord:
    """A child's request line on the parent's clock (``started`` = when the plan was sent)."""
    start, end = started + float(line["start"]), started + float(line["end"])
    error = str(line["error"])
    return RequestRecord(
        backend_id=str(line["backend_id"]),
        start=start,
        end=end,
        lb_ms=0.0,  # no LB on the data path: the xDS client picks locally
        compute_ms=(end - start) * 1e3,
        total_ms=float(line["total_ms"]),
        ok=not error,
        error=error,
    )


class StockXdsFlow:
    """One stock grpcio xDS client process with ``clients`` channels, for one case."""

    def __init__(self, lb_target: str, service: str, clients: int, work_dir: Path) -> None:
        self._lb_target = lb_target
        self._target = f"xds:///{service}"
        self._clients = clients
        self._dir = work_dir
        self._proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def start(self) -> None:
        """Start the child and wait until every channel of it is READY."""
        self._dir.mkdir(parents=True, exist_ok=True)
        stubs = generate_stubs(self._dir / "stubs")
        bootstrap = write_bootstrap(self._lb_target, self._dir / "bootstrap.json", "lab-xds")
        self._log = open(self._dir / "stock-xds-flow.log", "ab")  # noqa: SIM115 - closed in close()
        self._proc = await asyncio.create_subprocess_exec(
            *flow_command(stubs),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "GRPC_XDS_BOOTSTRAP": str(bootstrap)},
        )
        await self._send({"target": self._target, "clients": self._clients})
        line = await asyncio.wait_for(self._read(), READY_TIMEOUT_S)
        if not line.get("ready"):
            raise RuntimeError(f"stock xDS client: expected ready, got {line}")

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(message) + "\n").encode())
        await self._proc.stdin.drain()

    async def _read(self) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        raw = await self._proc.stdout.readline()
        if not raw:
            code = await self._proc.wait()
            raise RuntimeError(f"stock xDS client exited (code {code}):\n{self.log_tail()}")
        message: dict[str, Any] = json.loads(raw)
        return message

    async def closed_loop(
        self, requests_per_client: int, timeout: float, on_record: OnRecord
    ) -> tuple[list[RequestRecord], float]:
        """Every channel sends its requests one after another, all channels at once."""
        plan = {"mode": "closed", "requests_per_client": requests_per_client, "timeout": timeout}
        return await self.run(plan, on_record)

    async def open_loop(
        self, arrivals: Sequence[float], timeout: float, on_record: OnRecord
    ) -> tuple[list[RequestRecord], float]:
        """Request k at start + ``arrivals[k]`` on channel k mod C, whatever the answers."""
        plan = {"mode": "open", "arrivals": list(arrivals), "timeout": timeout}
        return await self.run(plan, on_record)

    async def run(
        self, plan: dict[str, Any], on_record: OnRecord
    ) -> tuple[list[RequestRecord], float]:
        """Send the plan (the start signal); collect records until the child is done."""
        started = time.perf_counter()
        await self._send(plan)
        records: list[RequestRecord] = []
        while not (line := await self._read()).get("done"):
            record = record_from(line, started)
            on_record(record)
            records.append(record)
        if line["lookaside_modules"]:
            raise RuntimeError(f"the stock xDS client loaded {line['lookaside_modules']}")
        return records, max(float(line["wall"]), 1e-9)

    def log_tail(self, chars: int = 2000) -> str:
        path = self._dir / "stock-xds-flow.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    async def close(self) -> None:
        """Close its stdin (it exits), and kill it if it does not within 10 s."""
        if self._proc is not None:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._log is not None:
            self._log.close()
