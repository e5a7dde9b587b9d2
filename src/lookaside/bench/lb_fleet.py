"""A simulated fleet for ``lookaside bench-lb-cost``: raw streams, in processes of their own.

Each simulated backend registers (``RegisterBackend``) and holds a ``StreamLoad``
stream; a driver hands the streams their reports at a fixed total rate, round
robin over the fleet, so every backend reports at ``rate / fleet`` Hz with its
phase spread evenly (no burst of every backend at the same instant). A fleet of
thousands of streams costs its own process a good share of a core, so it is
split over a few generator processes (:class:`FleetProcesses`), each holding a
slice of the fleet and driving its share of the rate; they and the rest of the
bench run on cores the LB is not pinned to (:func:`pin`), so the LB's latency is
the LB's and not a starved CPU's.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from grpc import aio

from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

SERVICE = "compute"
#: Connections a slice of the fleet spreads its streams over, whatever its size, so
#: every fleet size pays the same transport costs (HTTP/2 batching differs per connection).
CHANNELS_PER_SLICE = 5
#: How often the driver hands out the reports that fell due.
_TICK = 0.005
#: Seconds a registration may take on a crowded machine (fleets join in one burst).
SLOW_RPC = 120.0


def cpu_split() -> tuple[set[int], set[int]]:
    """(the LB's cores, everyone else's): one core for the LB, the rest for the load.

    On a one-core machine both are that core (nothing is pinned apart).
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(cpus), set(cpus)
    return {cpus[0]}, set(cpus[1:])


def pin(pid: int, cpus: Collection[int]) -> None:
    """Pin every thread of process ``pid`` to ``cpus`` (threads it makes later inherit it)."""
    with contextlib.suppress(FileNotFoundError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.sched_setaffinity(int(tid), set(cpus))


class _Channels:
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
    """Backends ``first .. first + count - 1`` as raw streams: register, report when told."""

    target: str
    count: int
    first: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    sent: int = 0

    def __post_init__(self) -> None:
        self._channels = _Channels(self.target, min(self.count, CHANNELS_PER_SLICE))
        self._queues: list[asyncio.Queue[pb.LoadReport | None]] = []
        self._calls: list[asyncio.Task[pb.RegisterResponse]] = []
        self._next = 0

    def backend_id(self, index: int) -> str:
        return f"sim-{self.first + index:05d}"

    async def start(self) -> None:
        """Register every backend and open its stream (its first report keeps the lease)."""
        gate = asyncio.Semaphore(32)
        self._queues = [asyncio.Queue() for _ in range(self.count)]

        async def join(index: int) -> None:
            stub = self._channels.stub(index)
            number = self.first + index
            async with gate:
                await stub.RegisterBackend(
                    pb.BackendInfo(
                        id=self.backend_id(index),
                        address="127.0.0.1",
                        port=20000 + number % 40000,
                        service_name=SERVICE,
                        capacity=4,
                    ),
                    timeout=SLOW_RPC,
                )
            self._calls.append(asyncio.ensure_future(stub.StreamLoad(self._reports(index))))
            self._queue_report(index)  # a first report names the stream's backend

        await asyncio.gather(*(join(i) for i in range(self.count)))
        deadline = asyncio.get_running_loop().time() + SLOW_RPC
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


def _slice_main(conn: Connection, target: str, first: int, count: int) -> None:
    """A generator process: one slice of the fleet, driven by commands on ``conn``."""
    asyncio.run(_serve_slice(conn, target, first, count))


async def _serve_slice(conn: Connection, target: str, first: int, count: int) -> None:
    loop = asyncio.get_running_loop()
    fleet = SimulatedFleet(target, count, first, random.Random(11 + first))
    try:
        await fleet.start()
        conn.send(("ready", fleet.sent))
    except Exception as error:  # the parent shows it; nothing to drive
        conn.send(("error", repr(error)))
        return
    while True:
        command, rate, seconds = await loop.run_in_executor(None, conn.recv)
        if command == "drive":
            conn.send(("driven", await fleet.drive(rate, seconds)))
        else:
            await fleet.stop()
            conn.send(("stopped", 0))
            return


class FleetProcesses:
    """``count`` backends split over ``processes`` generator processes, pinned to ``cpus``."""

    def __init__(self, target: str, count: int, processes: int, cpus: Collection[int]) -> None:
        processes = max(1, min(processes, count))
        context = multiprocessing.get_context("spawn")
        bounds = [count * i // processes for i in range(processes + 1)]
        self._slices = [(bounds[i], bounds[i + 1] - bounds[i]) for i in range(processes)]
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        for first, size in self._slices:
            parent, child = context.Pipe()
            proc = context.Process(target=_slice_main, args=(child, target, first, size))
            proc.daemon = True
            proc.start()
            assert proc.pid is not None
            pin(proc.pid, cpus)
            self._conns.append(parent)
            self._procs.append(proc)

    async def _replies(self) -> list[int]:
        """One reply from every slice; a slice that failed to join fails the run."""
        loop = asyncio.get_running_loop()
        replies = await asyncio.gather(
            *(loop.run_in_executor(None, conn.recv) for conn in self._conns)
        )
        errors = [detail for kind, detail in replies if kind == "error"]
        if errors:
            raise RuntimeError(f"a simulated backend failed to join: {errors[0]}")
        return [int(value) for _, value in replies]

    async def _ask(self, command: str, rates: Sequence[float], seconds: float) -> list[int]:
        for conn, rate in zip(self._conns, rates, strict=True):
            conn.send((command, rate, seconds))
        return await self._replies()

    async def ready(self) -> None:
        """Wait until every slice has registered and sent its first reports."""
        await self._replies()

    async def drive(self, rate: float, seconds: float) -> int:
        """``rate`` reports a second over the whole fleet for ``seconds``; how many were sent."""
        total = sum(size for _, size in self._slices)
        rates = [rate * size / total for _, size in self._slices]
        return sum(await self._ask("drive", rates, seconds))

    async def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError, BrokenPipeError):
            await asyncio.wait_for(self._ask("stop", [0.0] * len(self._conns), 0.0), 30)
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


__all__ = ["SERVICE", "FleetProcesses", "SimulatedFleet", "cpu_split", "pin"]
