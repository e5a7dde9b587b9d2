"""The ``lookaside.v1.LoadBalancer`` servicer: validate, call the core, map errors.

It holds no state of its own beyond which load stream currently speaks for
which backend and which caller address owns which backend id (see
:mod:`lookaside.lb.ownership`); membership is written through the store
(:mod:`lookaside.lb.store`) and read from the registry view it feeds, choices
live in the balancer. A store that cannot be reached makes registrations answer
``UNAVAILABLE``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from grpc import aio

from lookaside import convert, validation
from lookaside.errors import InvalidArgument, ResourceExhausted, ServiceError
from lookaside.lb.admin.metrics import LbMetrics
from lookaside.lb.balancer import Balancer
from lookaside.lb.grpc_errors import abort_with
from lookaside.lb.ownership import Owners, peer_ip
from lookaside.lb.registry import Change, InMemoryRegistry
from lookaside.lb.report_budget import Pace, ReportBudget
from lookaside.lb.store import MemoryStore, Store
from lookaside.lb.watch_hub import WatchHub
from lookaside.lb.watch_sets import WatchSets
from lookaside.model import LoadMetrics, ServingState
from lookaside.serving import DEFAULT_MAX_MESSAGE_BYTES
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.lb")

Context = aio.ServicerContext[Any, Any]
#: Receives (service, per-backend (id, finished, failed)) from client stats reports.
ClientStatsSink = Callable[[str, list[tuple[str, int, int]]], None]

DEFAULT_MAX_STREAMS = 4096
#: What a report held back by the budget keeps besides its load.
PendingReport = tuple[LoadMetrics, ServingState]
MAX_STATS_ENTRIES = 1024


class LoadBalancerService(pb_grpc.LoadBalancerServicer):
    #: Set by the server when metrics are on (see ``lookaside.lb.admin.metrics``).
    metrics: LbMetrics | None = None
    #: The registry's clock (report ages in ListBackends); the server sets its own.
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def __init__(
        self,
        registry: InMemoryRegistry,
        balancer: Balancer,
        report_interval: float,
        max_streams: int = DEFAULT_MAX_STREAMS,
        client_stats_sink: ClientStatsSink | None = None,
        client_stats_interval: float = 2.0,
        watch_hub: WatchHub | None = None,
        report_budget: ReportBudget[PendingReport] | None = None,
        store: Store | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self._registry = registry
        self._store = store or MemoryStore(registry)
        self._balancer = balancer
        self._report_interval = report_interval
        self._max_streams = max_streams
        self._owners = Owners(registry)
        self._store.on_lease = self._owners.adopt  # leases other replicas registered
        self._stream_owner: dict[str, object] = {}  # backend id -> token of its open stream
        registry.subscribe(self._forget_stream)
        self._open_streams = 0
        self._client_stats_sink = client_stats_sink
        self._client_stats_interval = client_stats_interval
        self._watch_hub = watch_hub or WatchHub()
        balancer.subscribe_backends(self._watch_hub.changed)
        self._watch_sets = WatchSets(balancer, self._watch_hub, max_message_bytes)
        self._budget: ReportBudget[PendingReport] = report_budget or ReportBudget(
            0, report_interval, ttl=registry.ttl
        )
        registry.subscribe(self._forget_budget)
        self._open_watches = 0

    @property
    def open_streams(self) -> int:
        return self._open_streams

    @property
    def open_watches(self) -> int:
        return self._open_watches

    def _forget_stream(self, service: str, backend_id: str, change: Change) -> None:
        # A stream outliving its backend's lease must not mark a later registration down.
        if change is Change.LEFT:
            self._stream_owner.pop(backend_id, None)

    def _forget_budget(self, service: str, backend_id: str, change: Change) -> None:
        if change is Change.LEFT:
            self._budget.forget(backend_id)

    def _ok(
        self, message: str, lease_id: str = "", pace: Pace | None = None
    ) -> pb.RegisterResponse:
        pace = pace or self._budget.pace()
        return pb.RegisterResponse(
            success=True,
            message=message,
            lease_ttl_seconds=self._registry.ttl,
            report_interval_seconds=pace.interval,
            min_report_gap_seconds=pace.min_gap,
            lease_id=lease_id,
        )

    def _record_report(self, report: pb.LoadReport, caller: str, expected_id: str | None) -> str:
        """Validate one load report, check its lease or caller, record it; the backend id.

        Reports after a stream's first go through the report budget: one that
        comes early beyond it is held back and applied later (``apply_due_reports``).
        """
        backend_id, load, metrics = convert.report_from_pb(report)
        state = convert.serving_state_from_pb(report.serving_state)
        if expected_id is not None and backend_id != expected_id:
            raise InvalidArgument(
                "id", f"this stream speaks for {expected_id!r}, not {backend_id!r}"
            )
        self._owners.check_owner(backend_id, caller, report.lease_id)
        if expected_id is not None:
            current = self._registry.get(backend_id)
            urgent = current is not None and current.serving_state is not state
            if not self._budget.admit(backend_id, load, (metrics, state), urgent):
                return backend_id
        self._store.report(backend_id, load, metrics, state)
        return backend_id

    def apply_due_reports(self) -> None:
        """Apply the reports the budget held back whose gap is over (the sweeper calls it)."""
        for backend_id, load, (metrics, state) in self._budget.due():
            if self._registry.get(backend_id) is not None:
                self._store.report(backend_id, load, metrics, state)

    async def RegisterBackend(
        self, request: pb.BackendInfo, context: Context
    ) -> pb.RegisterResponse:
        caller = peer_ip(context.peer())
        try:
            registration = convert.registration_from_pb(request)
            lease = self._owners.lease_for(registration.id, caller, request.lease_id)
            created = await self._store.register(registration, lease)
        except ServiceError as error:
            await abort_with(context, error)
        lease_id = self._owners.claim(registration.id, lease)
        pace = self._budget.told(registration.id)
        if created:
            log.info(
                "registered id=%s service=%s target=%s:%d capacity=%d",
                registration.id,
                registration.service,
                registration.address,
                registration.port,
                registration.capacity,
            )
            return self._ok(f"registered {registration.id}", lease_id, pace)
        return self._ok(f"renewed {registration.id}", lease_id, pace)

    async def ReportLoad(self, request: pb.LoadReport, context: Context) -> pb.RegisterResponse:
        try:
            self._record_report(request, peer_ip(context.peer()), None)
        except ServiceError as error:
            await abort_with(context, error)
        return self._ok("load recorded")

    async def StreamLoad(
        self, request_iterator: AsyncIterator[pb.LoadReport], context: Context
    ) -> pb.RegisterResponse:
        if self._open_streams >= self._max_streams:
            await abort_with(
                context, ResourceExhausted(f"{self._open_streams} load streams are open already")
            )
        self._open_streams += 1
        token = object()
        backend_id: str | None = None
        caller = peer_ip(context.peer())
        try:
            async for report in request_iterator:
                try:
                    reported_id = self._record_report(report, caller, backend_id)
                    if backend_id is None:
                        backend_id = reported_id
                        self._stream_owner[backend_id] = token
                except ServiceError as error:
                    await abort_with(context, error)
                if backend_id is not None and self._budget.stale_pace(backend_id):
                    # The fleet changed a lot: end the stream with the new pace. The
                    # backend renews its registration (lease kept) and reopens.
                    self._stream_owner.pop(backend_id, None)
                    return self._ok("report pace changed; renew and reopen the stream")
            return self._ok("stream closed")
        finally:
            self._open_streams -= 1
            if backend_id is not None and self._stream_owner.get(backend_id) is token:
                del self._stream_owner[backend_id]
                gone = self._store.mark_down(backend_id)
                if gone is not None:
                    log.info("marked down id=%s reason=load stream ended", backend_id)
                    if self.metrics:
                        self.metrics.deregistered(gone.service, "stream_ended")

    async def GetBackend(self, request: pb.ServerRequest, context: Context) -> pb.BackendInfo:
        try:
            service, pick_request = convert.pick_request_from_pb(request)
            endpoint = self._balancer.pick(service, pick_request)
        except ServiceError as error:
            await abort_with(context, error)
        if log.isEnabledFor(logging.DEBUG):
            ejected = ",".join(sorted(self._balancer.ejected(service))) or "none"
            log.debug(
                "picked id=%s service=%s client=%s ejected=%s",
                endpoint.id,
                service,
                request.client_id,
                ejected,
            )
        return convert.endpoint_to_pb(endpoint)

    async def Deregister(
        self, request: pb.DeregisterRequest, context: Context
    ) -> pb.RegisterResponse:
        try:
            backend_id = validation.backend_id(request.id)
            self._owners.check_owner(backend_id, peer_ip(context.peer()), request.lease_id)
            endpoint = await self._store.deregister(backend_id)
        except ServiceError as error:
            await abort_with(context, error)
        log.info("deregistered id=%s service=%s", backend_id, endpoint.service)
        if self.metrics:
            self.metrics.deregistered(endpoint.service, "deregister")
        return self._ok(f"deregistered {backend_id}")

    async def ListBackends(
        self, request: pb.ListBackendsRequest, context: Context
    ) -> pb.ListBackendsResponse:
        try:
            service = validation.service_name(request.service_name)
        except ServiceError as error:
            await abort_with(context, error)
        ejected = self._balancer.ejected(service)
        now = self.clock()
        backends = []
        for e in self._registry.endpoints(service):
            info = convert.endpoint_to_pb(e, e.id in ejected)
            info.picks = self._balancer.picks.get(e.id, 0)
            info.report_age_seconds = max(0.0, now - (e.reported_at or e.registered_at))
            backends.append(info)
        return pb.ListBackendsResponse(
            backends=backends, policy=self._balancer.policy_name(service)
        )

    async def ListServices(
        self, request: pb.ListServicesRequest, context: Context
    ) -> pb.ListServicesResponse:
        return pb.ListServicesResponse(
            services=[
                pb.ServiceSummary(
                    name=name,
                    policy=self._balancer.policy_name(name),
                    backends=len(self._registry.endpoints(name)),
                )
                for name in sorted(self._registry.services())
            ]
        )

    async def WatchBackends(
        self, request: pb.WatchRequest, context: Context
    ) -> AsyncIterator[pb.BackendSet]:
        """The fast path: the service's live set now, then after every publication.

        With ``accept_deltas`` only the first message (and a resync after a gap)
        is the whole set; the others carry what changed since the previous one.
        A set over the message size limit goes out in several (``continued``).
        Messages are shared between subscribers (see :mod:`lookaside.lb.watch_sets`).
        """
        try:
            service = validation.service_name(request.service_name)
            validation.client_id(request.client_id)
            if self._open_watches >= self._max_streams:
                raise ResourceExhausted(f"{self._open_watches} watches are open already")
        except ServiceError as error:
            await abort_with(context, error)
        hub = self._watch_hub
        self._open_watches += 1
        try:
            sent: int | None = None
            while True:
                if sent is not None and hub.published(service) == sent:
                    await hub.wait_past(service, sent)
                    continue
                messages = self._watch_sets.messages(
                    service, sent if request.accept_deltas else None
                )
                for message in messages:
                    yield message
                sent = messages[-1].version
                if self.metrics:
                    self.metrics.watch_pushed(service)
        finally:
            self._open_watches -= 1

    async def ReportClientStats(
        self, request: pb.ClientStats, context: Context
    ) -> pb.ClientStatsResponse:
        try:
            service = validation.service_name(request.service_name)
            validation.client_id(request.client_id)
            if len(request.per_backend) > MAX_STATS_ENTRIES:
                raise InvalidArgument(
                    "per_backend",
                    f"has {len(request.per_backend)} entries (limit {MAX_STATS_ENTRIES})",
                )
            entries = []
            for stats in request.per_backend:
                validation.backend_id(stats.backend_id, "per_backend.backend_id")
                if stats.calls_finished < 0 or not 0 <= stats.calls_failed <= stats.calls_finished:
                    raise InvalidArgument(
                        "per_backend",
                        f"{stats.backend_id}: need 0 <= calls_failed <= calls_finished",
                    )
                entries.append((stats.backend_id, stats.calls_finished, stats.calls_failed))
        except ServiceError as error:
            await abort_with(context, error)
        if self._client_stats_sink is not None:
            self._client_stats_sink(service, entries)
        return pb.ClientStatsResponse(report_interval_seconds=self._client_stats_interval)
