"""The client half of the fast path: pick locally from the LB's announced set.

:class:`BackendWatcher` keeps a ``WatchBackends`` stream open and, on every
update, rebuilds a local picker with the same policy code the LB runs (the
LB's policy for the service, or one the client names). A pick is then a
function call instead of a ``GetBackend`` round trip, so the LB is off the
per-request path: its work grows with the number of changes, not requests.

The client's own picks since a backend's last report count towards that
backend's load, exactly as on the LB. Other clients' picks are invisible here,
so with many clients ``p2c`` is the safer local choice for load-aware
balancing: its random sampling keeps clients with the same view from all
picking the same backend (the herd effect a global ``least_load`` would have).

If the stream breaks, the last set keeps serving (a backend that has died is
caught by the client's failover) while the watcher reconnects with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

from grpc import aio

from lookaside import convert, policies
from lookaside.backoff import Backoff
from lookaside.model import Endpoint, PickRequest
from lookaside.policies import Picker, PickTracker, Policy, Snapshot
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.client")


class BackendWatcher:
    """Keeps a local picker in step with the LB's ``WatchBackends`` stream."""

    def __init__(
        self,
        channel: aio.Channel,
        client_id: str,
        service: str,
        *,
        policy: str | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        rng: random.Random | None = None,
    ) -> None:
        if policy is not None:
            policies.create(policy)  # fail fast on a typo
        self._stub = pb_grpc.LoadBalancerStub(channel)
        self._request = pb.WatchRequest(client_id=client_id, service_name=service)
        self._policy_override = policy
        self._metadata = tuple(metadata)
        self._rng = rng or random.Random()
        self._policy: Policy | None = None
        self._tracker = PickTracker()
        self._picker: Picker | None = None
        self._infos: dict[str, pb.BackendInfo] = {}
        self._first_seen: dict[str, float] = {}
        self._last_reports: dict[str, tuple[float, bytes]] = {}
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def size(self) -> int:
        return len(self._infos)

    def pick(self, request: PickRequest) -> pb.BackendInfo | None:
        """A local pick, or None before the first update (or when all are excluded)."""
        if self._picker is None:
            return None
        endpoint = self._picker.pick(request)
        return self._infos.get(endpoint.id) if endpoint is not None else None

    async def _run(self) -> None:
        backoff = Backoff(base=0.05, cap=1.0, rng=self._rng)
        while True:
            try:
                stream = self._stub.WatchBackends(self._request, metadata=self._metadata)
                async for backend_set in stream:
                    backoff.reset()
                    self.apply(backend_set)
            except aio.AioRpcError as error:
                log.debug("watch broke code=%s; keeping the last set", error.code().name)
            await asyncio.sleep(backoff.next_delay())

    def apply(self, backend_set: pb.BackendSet) -> None:
        """Rebuild the local picker from one update."""
        now = time.monotonic()
        name = self._policy_override or backend_set.policy
        if self._policy is None or self._policy.name != name:
            self._policy = policies.create(name, self._rng)
        live = {info.id for info in backend_set.backends}
        for gone in set(self._infos) - live:
            self._tracker.forget(gone)
            self._first_seen.pop(gone, None)
            self._last_reports.pop(gone, None)
        endpoints = tuple(self._endpoint(info, now) for info in backend_set.backends)
        self._infos = {info.id: info for info in backend_set.backends}
        self._picker = self._policy.build(Snapshot(endpoints, self._tracker, now))
        self.ready.set()

    def _endpoint(self, info: pb.BackendInfo, now: float) -> Endpoint:
        registered_at = self._first_seen.setdefault(info.id, now)
        report = info.last_report.SerializeToString(deterministic=True)
        previous = self._last_reports.get(info.id)
        if previous is None or previous[1] != report:
            self._tracker.reset(info.id)  # the report now counts our earlier picks
            self._last_reports[info.id] = (now, report)
        return convert.endpoint_from_pb(info, registered_at, self._last_reports[info.id][0])
