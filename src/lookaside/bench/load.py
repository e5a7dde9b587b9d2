"""Load generators: the seed's client flow and the baselines, closed and open loop.

Every simulated client is its own client object with its own channels, as the
seed's 100 clients were separate clients. All of them run in one process on one
event loop, and every channel uses gRPC's default arguments, so in *every* flow
gRPC C-core's global subchannel pool shares one TCP connection per backend
address between the clients of the process. Connection set-up happens lazily on
a client's first request and is inside its timed window, for our flow and the
baseline alike.

Flows (one :class:`FlowClient` each):

* :class:`SeedFlowClient` — exactly the seed's flow, no retries:
  ``GetBackend`` on the LB, then ``ComputeTask`` on the backend it named.
* :class:`GrpcRoundRobinClient` — the baseline users would pick instead of a
  look-aside LB: one channel over the static list of backend addresses with
  gRPC's own client-side ``round_robin`` policy, no LB query.
* :class:`FailoverClient` — :class:`~lookaside.client.LookasideClient`'s
  ``compute`` with its failover and retries (the chaos scenario).

Timing (``time.perf_counter``): a record's ``start`` is when the request was
actually sent; ``total_ms`` runs from the request's *origin* to its end, where
the origin is the send time in a closed loop and the *scheduled* arrival time in
an open loop, so time spent waiting in the client shows in the latency.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from grpc import aio

from lookaside.bench.metrics import RequestRecord
from lookaside.channels import dial
from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS, ClientConfig
from lookaside.client.lookaside_client import LookasideClient, LookasideError
from lookaside.model import DEFAULT_SERVICE
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

WRONG_RESULT = "wrong result"
GRPC_ROUND_ROBIN_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

OnRecord = Callable[[RequestRecord], None]


def payload(client: int, request: int) -> str:
    return f"lookaside-{client}-{request}"


def _error(error: aio.AioRpcError | LookasideError) -> str:
    return error.code.name if isinstance(error, LookasideError) else error.code().name


def _record(
    backend_id: str,
    origin: float,
    t0: float,
    t1: float,
    t2: float,
    error: str,
    retries: int = 0,
) -> RequestRecord:
    return RequestRecord(
        backend_id=backend_id,
        start=t0,
        end=t2,
        lb_ms=(t1 - t0) * 1e3,
        compute_ms=(t2 - t1) * 1e3,
        total_ms=(t2 - origin) * 1e3,
        ok=not error,
        error=error,
        retries=retries,
    )


def _origin(scheduled: float | None, sent: float) -> float:
    return sent if scheduled is None else scheduled


class FlowClient(Protocol):
    async def connect(self) -> None:
        """Get ready before the clock starts (only where a public API allows it)."""

    async def request(
        self, text: str, timeout: float, scheduled: float | None = None
    ) -> RequestRecord: ...

    async def close(self) -> None: ...


class _LookasideFlow:
    """A flow over one :class:`LookasideClient` of its own, made with ``config``."""

    def __init__(
        self,
        lb_target: str,
        service: str = DEFAULT_SERVICE,
        client_id: str = "",
        config: ClientConfig = LOOKASIDE_CLIENT_DEFAULTS,
    ) -> None:
        config = replace(config, client_id=client_id) if client_id else config
        self._client = LookasideClient(lb_target, service, config)

    async def connect(self) -> None:
        """Nothing public to do: shared connections are warmed by :class:`WarmConnections`."""

    async def close(self) -> None:
        await self._client.close()


class SeedFlowClient(_LookasideFlow):
    """``GetBackend`` then ``ComputeTask``, the seed's flow, with no failover."""

    async def request(
        self, text: str, timeout: float, scheduled: float | None = None
    ) -> RequestRecord:
        t0 = time.perf_counter()
        t1, backend_id, error = t0, "", ""
        try:
            backend = await self._client.get_backend(timeout=timeout)
            t1 = time.perf_counter()
            backend_id = backend.id
            reply = await self._client.call_backend(backend, text, timeout - (t1 - t0))
            error = "" if reply.result == text[::-1] else WRONG_RESULT
        except aio.AioRpcError as exc:
            error = _error(exc)
            t1 = t1 if backend_id else time.perf_counter()
        return _record(backend_id, _origin(scheduled, t0), t0, t1, time.perf_counter(), error)


def static_target(backends: Sequence[pb.BackendInfo]) -> str:
    """``ipv4:127.0.0.1:p1,127.0.0.1:p2,...``: gRPC's resolver for a fixed address list."""
    return "ipv4:" + ",".join(f"{b.address}:{b.port}" for b in backends)


class GrpcRoundRobinClient:
    """gRPC's own client-side ``round_robin`` over the static backend list (no LB)."""

    def __init__(self, backends: Sequence[pb.BackendInfo]) -> None:
        self._channel = dial(
            static_target(backends), options=[("grpc.service_config", GRPC_ROUND_ROBIN_CONFIG)]
        )
        self._stub = pb_grpc.ComputeStub(self._channel)

    async def request(
        self, text: str, timeout: float, scheduled: float | None = None
    ) -> RequestRecord:
        t0 = time.perf_counter()
        backend_id, error = "", ""
        try:
            reply = await self._stub.ComputeTask(pb.TaskRequest(input=text), timeout=timeout)
            backend_id = reply.backend_id
            error = "" if reply.result == text[::-1] else WRONG_RESULT
        except aio.AioRpcError as exc:
            error = _error(exc)
        return _record(backend_id, _origin(scheduled, t0), t0, t0, time.perf_counter(), error)

    async def connect(self) -> None:
        """Leave IDLE: round_robin connects to every address; READY once one answers."""
        await self._channel.channel_ready()

    async def close(self) -> None:
        await self._channel.close(None)


class FailoverClient(_LookasideFlow):
    """:meth:`LookasideClient.compute`: the library's failover, retries and deadlines."""

    async def request(
        self, text: str, timeout: float, scheduled: float | None = None
    ) -> RequestRecord:
        t0 = time.perf_counter()
        try:
            reply = await self._client.compute(text, timeout=timeout)
        except LookasideError as exc:
            t2 = time.perf_counter()
            return _record("", _origin(scheduled, t0), t0, t0, t2, _error(exc))
        t2 = time.perf_counter()
        error = "" if reply.result == text[::-1] else WRONG_RESULT
        return RequestRecord(
            backend_id=reply.backend_id,
            start=t0,
            end=t2,
            lb_ms=reply.lb_ms,
            compute_ms=reply.compute_ms,
            total_ms=(t2 - (_origin(scheduled, t0))) * 1e3,
            ok=not error,
            error=error,
            retries=reply.attempts - 1,
        )


class WarmConnections:
    """One open channel per server address, held for the whole run.

    gRPC C-core shares subchannels (connections) between channels with the same
    target and arguments; while these channels hold them, every client's channel
    to the LB or to a backend finds its connection already READY. So no flow pays
    TCP and HTTP/2 set-up inside its timed window, just as the LB has already
    heard from every backend before the clock starts. Sharing needs identical
    channel arguments, so every channel here is opened with
    :func:`lookaside.channels.dial`, as :class:`LookasideClient` opens its own.
    """

    def __init__(self, targets: Sequence[str]) -> None:
        self._channels = [dial(target) for target in targets]

    async def open(self, clients: Sequence[FlowClient], timeout: float = 30.0) -> None:
        ready = [channel.channel_ready() for channel in self._channels]
        await asyncio.wait_for(asyncio.gather(*ready), timeout)
        await asyncio.wait_for(asyncio.gather(*(c.connect() for c in clients)), timeout)
        await asyncio.sleep(0.2)  # let every channel's policy see all subchannels READY

    async def close(self) -> None:
        await asyncio.gather(*(c.close(None) for c in self._channels), return_exceptions=True)


async def close_all(clients: Sequence[FlowClient]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


async def closed_loop(
    clients: Sequence[FlowClient],
    requests_per_client: int,
    timeout: float,
    on_record: OnRecord | None = None,
) -> tuple[list[RequestRecord], float]:
    """Every client sends its requests one after another, all clients at once.

    Returns the records and the wall time from the common start to the last answer.
    """
    go = asyncio.Event()

    async def one(index: int, client: FlowClient) -> list[RequestRecord]:
        await go.wait()
        records = []
        for number in range(requests_per_client):
            record = await client.request(payload(index, number), timeout)
            if on_record is not None:
                on_record(record)
            records.append(record)
        return records

    tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(clients, start=1)]
    await asyncio.sleep(0)  # every task is now parked on the start line
    started = time.perf_counter()
    go.set()
    done = await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    return [record for records in done for record in records], wall


def poisson_arrivals(rate_rps: float, duration_s: float, rng: random.Random) -> list[float]:
    """Arrival offsets (seconds from the start) of a Poisson process at ``rate_rps``."""
    if rate_rps <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    offsets: list[float] = []
    at = rng.expovariate(rate_rps)
    while at < duration_s:
        offsets.append(at)
        at += rng.expovariate(rate_rps)
    return offsets


async def open_loop(
    clients: Sequence[FlowClient],
    arrivals: Sequence[float],
    timeout: float,
    on_record: OnRecord | None = None,
    started: float | None = None,
) -> tuple[list[RequestRecord], float]:
    """Send request k at ``started + arrivals[k]`` whatever the answers so far (open loop).

    Requests go to the clients in turn. Latency counts from the scheduled time.
    Returns the records and the wall time from the start to the last answer.
    """
    begin = time.perf_counter() if started is None else started

    async def one(index: int, client: FlowClient, at: float) -> RequestRecord:
        record = await client.request(payload(index, 0), timeout, scheduled=at)
        if on_record is not None:
            on_record(record)
        return record

    tasks = []
    for index, offset in enumerate(arrivals):
        at = begin + offset
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        client = clients[index % len(clients)]
        tasks.append(asyncio.create_task(one(index, client, at)))
    records = list(await asyncio.gather(*tasks))
    end = max((r.end for r in records), default=time.perf_counter())
    return records, max(end - begin, 1e-9)
