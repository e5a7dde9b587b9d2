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

from lookaside import policies, serving
from lookaside.lb.balancer import Balancer
from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.registry import DEFAULT_MAX_BACKENDS, DEFAULT_TTL, InMemoryRegistry
from lookaside.lb.report_budget import DEFAULT_MIN_REPORT_GAP, DEFAULT_REPORT_BUDGET, ReportBudget
from lookaside.lb.servicer import DEFAULT_MAX_STREAMS, LoadBalancerService
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
    xds: XdsConfig = field(default_factory=XdsConfig)  # xDS control plane: weights and damping

    def __post_init__(self) -> None:
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
        )
        self.xds = Publisher(self.balancer, config.xds, clock, services=config.service_policies)
        self.ads = AggregatedDiscoveryService(self.xds)
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

    async def start(self) -> int:
        self.port = serving.bind(
            self._server, self.config.host, self.config.port, self._credentials
        )
        await self._server.start()
        self._sweeper = asyncio.create_task(self._sweep_leases())
        await serving.set_serving(self._health, [LB_SERVICE], True)
        log.info(
            "listening on %s:%d policy=%s ttl=%gs %s",
            self.config.host,
            self.port,
            self.config.policy,
            self.config.ttl,
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
            for endpoint in self.registry.expire():
                log.info(
                    "evicted id=%s service=%s reason=lease expired (ttl %gs)",
                    endpoint.id,
                    endpoint.service,
                    self.config.ttl,
                )

    async def stop(self, grace: float = 1.0) -> None:
        await serving.set_serving(self._health, [LB_SERVICE], False)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self._server.stop(grace)


async def serve(config: LbConfig) -> int:
    """Run until SIGTERM/SIGINT; the CLI's exit code."""
    server = LbServer(config)
    await server.start()
    sig = await serving.wait_for_signal()
    log.info("stopping on %s", sig.name)
    await server.stop()
    return 0
