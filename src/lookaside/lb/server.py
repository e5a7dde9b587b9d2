"""``lookaside lb``: the LB server's lifecycle (configure, serve, sweep leases, stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lookaside import addresses, policies, serving
from lookaside.lb.admin.app import LbAdmin, StatusPage
from lookaside.lb.admin.fleet import FleetView
from lookaside.lb.admin.metrics import LbMetrics
from lookaside.lb.admin.timing import time_get_backend
from lookaside.lb.balancer import Balancer
from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.registry import DEFAULT_MAX_BACKENDS, DEFAULT_TTL, InMemoryRegistry
from lookaside.lb.report_budget import DEFAULT_MIN_REPORT_GAP, DEFAULT_REPORT_BUDGET, ReportBudget
from lookaside.lb.servicer import DEFAULT_MAX_STREAMS, LoadBalancerService
from lookaside.lb.store import StoreConfig, open_store
from lookaside.lb.watch_hub import DEFAULT_MIN_GAP as DEFAULT_WATCH_MIN_GAP
from lookaside.lb.watch_hub import WatchHub
from lookaside.lb.xds.ads import AggregatedDiscoveryService, add_ads_to_server, xds_auth_rules
from lookaside.lb.xds.config import XdsConfig
from lookaside.lb.xds.lrs import LoadReportingService, add_lrs_to_server
from lookaside.lb.xds.publisher import Publisher
from lookaside.security import AuthTokens, BearerAuthInterceptor, TlsConfig, lb_auth_rules
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.lb")

LB_SERVICE = pb.DESCRIPTOR.services_by_name["LoadBalancer"].full_name


@dataclass(frozen=True)
class LbConfig:
    """Everything ``lookaside lb`` can be told on its command line."""

    host: str = "127.0.0.1"
    port: int = 50051  # 0 = any free port (logged)
    policy: str = "least_load"  # default policy for every service
    service_policies: Mapping[str, str] = field(default_factory=dict)  # service -> policy
    ttl: float = DEFAULT_TTL  # seconds a backend may stay silent before eviction
    report_interval: float = 1.0  # how often backends are asked to report
    max_backends: int = DEFAULT_MAX_BACKENDS  # per service
    max_streams: int = DEFAULT_MAX_STREAMS  # concurrent StreamLoad calls
    max_message_bytes: int = 64 * 1024  # LB API messages are small; bigger ones are refused
    tokens: AuthTokens = field(default_factory=AuthTokens)  # None = that group of RPCs is open
    tls: TlsConfig = field(default_factory=TlsConfig)  # no cert = plaintext
    #: Per policy name, constructor options (see ``lookaside.lb.policy_flags``).
    policy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    outlier: OutlierConfig = field(default_factory=OutlierConfig)
    client_stats_interval: float = 2.0  # how often clients are asked to send call stats
    watch_min_gap: float = DEFAULT_WATCH_MIN_GAP  # fast path: least time between two updates
    #: Streamed load reports per second the LB ingests at most (0 = no limit); see report_budget.
    report_budget: float = DEFAULT_REPORT_BUDGET
    #: Least gap between two reports of one backend while the budget does not need more.
    min_report_gap: float = DEFAULT_MIN_REPORT_GAP
    admin_host: str = "127.0.0.1"  # the admin HTTP port: /metrics, /healthz, /readyz, status page
    admin_port: int | None = None  # None = no admin port; 0 = any free port (logged)
    store: StoreConfig = field(default_factory=StoreConfig)  # memory, or etcd for replicas
    xds: XdsConfig = field(default_factory=XdsConfig)  # xDS control plane: weights and damping

    def __post_init__(self) -> None:
        addresses.port_number(self.port, "--port", allow_zero=True)
        if self.admin_port is not None:
            addresses.port_number(self.admin_port, "--admin-port", allow_zero=True)
        for name in (self.policy, *self.service_policies.values()):
            if name not in policies.POLICIES:
                raise ValueError(
                    f"unknown policy {name!r}; choose from {sorted(policies.POLICIES)}"
                )
        if self.ttl <= 0 or self.report_interval <= 0:
            raise ValueError("ttl and report interval must be positive")
        if self.report_interval >= self.ttl:
            raise ValueError("report interval must be shorter than the ttl")
        if self.report_budget < 0 or self.min_report_gap < 0:
            raise ValueError("--report-budget and --min-report-gap must not be negative")
        if min(self.max_backends, self.max_streams, self.max_message_bytes) < 1:
            raise ValueError("--max-backends, --max-streams and --max-message-bytes must be >= 1")

    def describe_security(self) -> str:
        """For the start-up log line: what is guarded, never the secrets themselves."""
        tls = "mtls" if self.tls.mutual else "on" if self.tls.serves_tls else "off"
        guarded = [
            name
            for name, token in (("backend", self.tokens.backend), ("client", self.tokens.client))
            if token is not None
        ]
        return f"tls={tls} auth={','.join(guarded) or 'off'}"


class LbServer:
    """An LB server in this process (the CLI runs one; tests may run several)."""

    def __init__(
        self,
        config: LbConfig,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.registry = InMemoryRegistry(config.ttl, clock, config.max_backends)
        self.store = open_store(config.store, self.registry, clock, rng)
        self.balancer = Balancer(
            self.registry,
            config.policy,
            config.service_policies,
            rng=rng,
            clock=clock,
            policy_options=config.policy_options,
            outlier=config.outlier,
        )
        self.service = LoadBalancerService(
            self.registry,
            self.balancer,
            config.report_interval,
            config.max_streams,
            client_stats_sink=self.balancer.record_client_stats,
            client_stats_interval=config.client_stats_interval,
            watch_hub=WatchHub(config.watch_min_gap),
            report_budget=ReportBudget(
                config.report_budget,
                config.report_interval,
                config.min_report_gap,
                config.ttl,
                clock,
            ),
            store=self.store,
            max_message_bytes=config.max_message_bytes,
        )
        self.service.clock = clock
        self.metrics = LbMetrics(
            self.registry, self.balancer, self.service, config.max_backends, clock
        )
        self.service.metrics = self.metrics
        self.store.on_error = self.metrics.store_error
        time_get_backend(self.service, self.metrics.get_backend_seconds)
        self.xds = Publisher(self.balancer, config.xds, clock, services=config.service_policies)
        self.ads = AggregatedDiscoveryService(self.xds, observer=self.metrics)
        self.lrs = LoadReportingService(
            self.balancer.record_client_stats, config.client_stats_interval
        )
        rules = lb_auth_rules(config.tokens)
        rules.update(xds_auth_rules(config.tokens))
        interceptors = [BearerAuthInterceptor(rules)] if rules else []
        self._credentials = config.tls.server_credentials()  # reads the PEM files now
        self._server = serving.new_server(config.max_message_bytes, interceptors)
        pb_grpc.add_LoadBalancerServicer_to_server(self.service, self._server)
        add_ads_to_server(self.ads, self._server)
        add_lrs_to_server(self.lrs, self._server)
        self._health = serving.add_health_and_reflection(self._server, [LB_SERVICE])
        self._sweeper: asyncio.Task[None] | None = None
        self.port = 0
        self._ready = False
        self.admin: LbAdmin | None = None
        if config.admin_port is not None:
            fleet = FleetView(self.registry, self.balancer, clock, self._describe)
            self.admin = LbAdmin(
                StatusPage(fleet),
                self.metrics.prometheus,
                lambda: self._ready,
                config.admin_host,
                config.admin_port,
            )

    def _describe(self) -> dict[str, Any]:
        """The LB as the status page names it."""
        return {
            "address": serving.join_host_port(self.config.host, self.port),
            "policy": self.config.policy,
            "ttl_seconds": self.config.ttl,
        }

    async def start(self) -> int:
        await self.store.start()  # the view is whole before the first pick
        self.port = serving.bind(
            self._server, self.config.host, self.config.port, self._credentials
        )
        await self._server.start()
        if self.admin is not None:
            try:
                await self.admin.start()
            except serving.StartupError:
                await self._server.stop(None)
                raise
        self._sweeper = asyncio.create_task(self._sweep_leases())
        await serving.set_serving(self._health, [LB_SERVICE], True)
        self._ready = True
        log.info(
            "listening on %s:%d policy=%s ttl=%gs store=%s %s",
            self.config.host,
            self.port,
            self.config.policy,
            self.config.ttl,
            self.store.describe(),
            self.config.describe_security(),
        )
        return self.port

    async def _sweep_leases(self) -> None:
        """Evict expired leases, let ejected outliers back in and apply held-back reports."""
        period = min(self.config.ttl / 5, 0.5)
        while True:
            await asyncio.sleep(period)
            self.balancer.sweep()
            self.service.apply_due_reports()
            for endpoint in self.store.expire():
                self.metrics.lease_expired(endpoint.service)
                log.info(
                    "evicted id=%s service=%s reason=lease expired (ttl %gs)",
                    endpoint.id,
                    endpoint.service,
                    self.config.ttl,
                )

    async def stop(self, grace: float = 1.0) -> None:
        self._ready = False
        await serving.set_serving(self._health, [LB_SERVICE], False)
        if self.admin is not None:
            await self.admin.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        # The store first: streams cut by our own shutdown must not delete the records
        # of backends that are about to reattach to another replica.
        await self.store.stop()
        await self._server.stop(grace)


async def serve(config: LbConfig) -> int:
    """Run until SIGTERM/SIGINT; the CLI's exit code."""
    server = LbServer(config)
    await server.start()
    sig = await serving.wait_for_signal()
    log.info("stopping on %s", sig.name)
    await server.stop()
    return 0
