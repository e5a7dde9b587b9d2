"""The client half of the fast path: pick locally from the LB's announced set.

:class:`BackendWatcher` keeps a ``WatchBackends`` stream open and, on every
update, rebuilds a local picker with the same policy code the LB runs (the
LB's policy for the service, or one the client names). A pick is then a
function call instead of a ``GetBackend`` round trip, so the LB is off the
per-request path: its work grows with the number of changes, not requests.

Deltas: the watcher asks for them (``WatchRequest.accept_deltas``). A message
with ``full`` set, or with ``base_version`` 0 (what an LB that ignores the
request sends, every message whole), replaces the set. Any other message is a
delta and applies only on top of the version held: if ``base_version`` is
another, a message was missed, so the watcher resubscribes and starts again
from a full set. A set too large for one message comes in several (all but the
last ``continued``, the later ones deltas on the set's own version): the
watcher gathers them and rebuilds its picker once, from the whole set.

The client's own picks since a backend's last report count towards that
backend's load, exactly as on the LB. Other clients' picks are invisible here,
so with many clients ``p2c`` is the safer local choice for load-aware
balancing: its random sampling keeps clients with the same view from all
picking the same backend (the herd effect a global ``least_load`` would have).

If the stream breaks, the last set keeps serving (a backend that has died is
caught by the client's transparent retries) while the watcher reconnects with
jittered back-off; with several LB replicas the channel's ``pick_first`` moves
to another one. Losing and regaining the LB are logged once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

from grpc import aio

from lookaside import convert, policies
from lookaside.backoff import Backoff
from lookaside.model import Endpoint, PickRequest
from lookaside.policies import Picker, PickTracker, Policy, Snapshot
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.client")

RECONNECT_BASE = 0.05  # seconds: first back-off after the stream breaks
RECONNECT_CAP = 1.0

#: Called with the ids of the backends that left the set (or moved to another address).
OnDeparted = Callable[[set[str]], None]


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
        accept_deltas: bool = True,
        on_departed: OnDeparted | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy is not None:
            policies.create(policy)  # fail fast on a typo
        self._stub = pb_grpc.LoadBalancerStub(channel)
        self._request = pb.WatchRequest(
            client_id=client_id, service_name=service, accept_deltas=accept_deltas
        )
        self._service = service
        self._policy_override = policy
        self._metadata = tuple(metadata)
        self._rng = rng or random.Random()
        self._on_departed = on_departed
        self._clock = clock
        self._policy: Policy | None = None
        self._policy_name = ""
        self._tracker = PickTracker()
        #: The local picker (None before the first set); replaced whole on every update.
        self.picker: Picker | None = None
        self._infos: dict[str, pb.BackendInfo] = {}
        self._version = 0
        #: A set arriving in several messages: (its version, what it holds so far).
        self._gathering: tuple[int, dict[str, pb.BackendInfo]] | None = None
        self._first_seen: dict[str, float] = {}
        self._last_reports: dict[str, tuple[float, bytes]] = {}
        self._task: asyncio.Task[None] | None = None
        self._lb_lost = False
        self.resubscriptions = 0
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

    @property
    def version(self) -> int:
        return self._version

    @property
    def stale(self) -> bool:
        """True while the stream to the LB is broken: picks come from the last set."""
        return self._lb_lost

    def backends(self) -> list[pb.BackendInfo]:
        return list(self._infos.values())

    def pick_id(self, request: PickRequest) -> str | None:
        """The id of a local pick (the hot path), or None as :meth:`pick`."""
        picker = self.picker
        if picker is None:
            return None
        endpoint = picker.pick(request)
        return None if endpoint is None else endpoint.id

    def info(self, backend_id: str) -> pb.BackendInfo | None:
        return self._infos.get(backend_id)

    def pick(self, request: PickRequest) -> pb.BackendInfo | None:
        """A local pick, or None before the first update (or when all are excluded)."""
        picker = self.picker
        if picker is None:
            return None
        endpoint = picker.pick(request)
        return self._infos.get(endpoint.id) if endpoint is not None else None

    async def _run(self) -> None:
        backoff = Backoff(base=RECONNECT_BASE, cap=RECONNECT_CAP, rng=self._rng)
        while True:
            stream = self._stub.WatchBackends(self._request, metadata=self._metadata)
            self._gathering = None  # a set cut short by a broken stream comes again whole
            try:
                async for backend_set in stream:
                    backoff.reset()
                    self._lb_back()
                    if not self.apply(backend_set):
                        self.resubscriptions += 1
                        log.info(
                            "watch delta base_version=%d but holding version=%d; resubscribing",
                            backend_set.base_version,
                            self._version,
                        )
                        stream.cancel()
                        break
                else:
                    self._lb_gone("the LB ended the watch")
            except aio.AioRpcError as error:
                self._lb_gone(f"code={error.code().name}")
            await asyncio.sleep(backoff.next_delay())

    def _lb_gone(self, why: str) -> None:
        if not self._lb_lost:
            self._lb_lost = True
            log.warning(
                "LB unreachable for service=%s (%s); serving from the last set of %d backend(s)",
                self._service,
                why,
                len(self._infos),
            )

    def _lb_back(self) -> None:
        if self._lb_lost:
            self._lb_lost = False
            log.info("LB reachable again for service=%s", self._service)

    def apply(self, backend_set: pb.BackendSet) -> bool:
        """Apply one message; False when it is a delta on a version we do not hold."""
        if self._gathering is not None:  # the rest of a set in several messages
            version, infos = self._gathering
            if backend_set.full or backend_set.base_version != version:
                self._gathering = None
                return False
        elif backend_set.full or backend_set.base_version == 0:
            infos = {}
        elif backend_set.base_version == self._version:
            infos = dict(self._infos)
        else:
            return False
        for gone in backend_set.removed_ids:
            infos.pop(gone, None)
        for info in backend_set.backends:
            infos[info.id] = info
        if backend_set.continued:
            self._gathering = (backend_set.version, infos)
            return True
        self._gathering = None
        self._version = backend_set.version
        self._rebuild(infos, backend_set.policy)
        return True

    def _rebuild(self, infos: dict[str, pb.BackendInfo], announced_policy: str) -> None:
        now = self._clock()
        name = self._policy_override or announced_policy or self._policy_name or "round_robin"
        if self._policy is None or self._policy_name != name:
            self._policy = policies.create(name, self._rng)
            self._policy_name = name
        departed = {
            backend_id
            for backend_id, old in self._infos.items()
            if (new := infos.get(backend_id)) is None
            or (new.address, new.port) != (old.address, old.port)
        }
        for gone in set(self._infos) - set(infos):
            self._tracker.forget(gone)
            self._first_seen.pop(gone, None)
            self._last_reports.pop(gone, None)
        endpoints = tuple(self._endpoint(info, now) for info in infos.values())
        self._infos = infos
        self.picker = self._policy.build(Snapshot(endpoints, self._tracker, now))
        self.ready.set()
        if departed and self._on_departed is not None:
            self._on_departed(departed)

    def _endpoint(self, info: pb.BackendInfo, now: float) -> Endpoint:
        registered_at = self._first_seen.setdefault(info.id, now)
        report = info.last_report.SerializeToString(deterministic=True)
        previous = self._last_reports.get(info.id)
        if previous is None or previous[1] != report:
            self._tracker.reset(info.id)  # the report now counts our earlier picks
            self._last_reports[info.id] = (now, report)
        return convert.endpoint_from_pb(info, registered_at, self._last_reports[info.id][0])
