"""``lookaside backend``: serve ``Compute`` behind a :class:`BackendAgent`.

The demo service runs on the same agent any user's server runs on: the agent's
interceptor measures every call, its reporter keeps the lease, it follows
health and speaks ORCA; :class:`~lookaside.backend.load_source.LoadSource`
only puts the demo's own load figure (tasks running + queued / workers) over
the measured ones, and queue changes ask for a report at once.

Start-up: listen (port 0 picks a free one), report SERVING on health, then
register with the LB using the real port. Shutdown on SIGTERM/SIGINT:
deregister, keep serving for a short drain period (picks handed out just
before the deregistration still arrive), finish the tasks in flight, exit 0.

Security: with ``tls.cert``/``tls.key`` the Compute port serves TLS (mutual
with ``tls.client_ca``); with ``tls.ca`` the channel to the LB is TLS and, when
the backend has a certificate, presents it (for an LB that requires mutual
TLS). ``token`` is the LB's backend token, sent as ``authorization: Bearer``
metadata on every membership RPC; it is never logged.

``admin_port``: serve Prometheus ``/metrics`` there (:mod:`lookaside.backend.admin`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from lookaside import serving
from lookaside.backend.agent import AgentConfig, BackendAgent
from lookaside.backend.compute import ComputeService, WorkMode
from lookaside.backend.load_source import LoadMode, LoadSource
from lookaside.model import DEFAULT_SERVICE
from lookaside.security import TlsConfig, Token
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.backend")

COMPUTE_SERVICE = pb.DESCRIPTOR.services_by_name["Compute"].full_name


def default_backend_id() -> str:
    return f"backend-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class BackendConfig:
    """Everything ``lookaside backend`` can be told on its command line."""

    lb: str = "127.0.0.1:50051"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port; the real one is registered
    advertise_host: str = ""  # address clients dial; empty = host
    id: str = ""  # empty = a random unique id
    service: str = DEFAULT_SERVICE
    workers: int = 4
    work_ms: float = 0.0
    work_mode: WorkMode = WorkMode.SLEEP
    max_queue: int = 1000
    weight: float = AgentConfig.weight
    report_interval: float = AgentConfig.report_interval
    report_min_gap: float = AgentConfig.report_min_gap  # queue changes, at most this often
    load_mode: LoadMode = LoadMode.REAL
    drain_seconds: float = AgentConfig.drain_seconds  # keep serving after deregistering
    shutdown_grace: float = AgentConfig.shutdown_grace  # longest wait for tasks in flight
    token: Token | None = None  # the LB's backend token; None = send none
    tls: TlsConfig = field(default_factory=TlsConfig)  # serve and dial TLS; default plaintext
    admin_port: int | None = None  # serve Prometheus /metrics here (0 = any free port)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.max_queue < 0:
            raise ValueError("--max-queue must be >= 0")
        if self.report_min_gap < 0:
            raise ValueError("--report-min-gap must be >= 0")
        if self.work_ms < 0 or self.report_interval <= 0:
            raise ValueError("--work-ms must be >= 0 and --report-interval > 0")
        if self.host in ("0.0.0.0", "::") and not self.advertise_host:
            raise ValueError("listening on all interfaces needs --advertise-host")


class BackendServer:
    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.id = config.id or default_backend_id()
        self.compute = ComputeService(
            self.id,
            config.workers,
            config.work_ms,
            config.work_mode,
            config.max_queue,
            on_reject=self._report_soon,
            on_change=self._report_soon,
        )
        # Read the PEM files now, so a bad path stops start-up with a clear message.
        self._server_credentials = config.tls.server_credentials()
        self._lb_tls = "on" if config.tls.channel_credentials() is not None else "off"
        self.agent = BackendAgent(
            config.lb,
            service=config.service,
            port=config.port,
            report_hook=LoadSource(self.compute, config.load_mode).adjust,
            host=config.advertise_host or config.host,
            id=self.id,
            capacity=config.workers,
            weight=config.weight,
            report_interval=config.report_interval,
            report_min_gap=config.report_min_gap,
            drain_seconds=config.drain_seconds,
            shutdown_grace=config.shutdown_grace,
            token=config.token,
            tls=config.tls,
        )
        self._server = serving.new_server(interceptors=[self.agent.aio_interceptor])
        pb_grpc.add_ComputeServicer_to_server(self.compute, self._server)
        self._health = serving.add_health_and_reflection(self._server, [COMPUTE_SERVICE])
        self.agent.attach(self._server, health=self._health)
        self.port = 0
        self.admin_port = 0

    async def start(self) -> int:
        config = self.config
        self.port = serving.bind(self._server, config.host, config.port, self._server_credentials)
        await self._server.start()
        await serving.set_serving(self._health, [COMPUTE_SERVICE], True)
        if config.admin_port is not None:
            from lookaside.backend.admin import serve_metrics

            self.admin_port = serve_metrics(self.agent, config.host, config.admin_port)
            log.info("metrics on http://%s:%d/metrics", config.host, self.admin_port)
        tls = "mtls" if config.tls.mutual else "on" if config.tls.serves_tls else "off"
        log.info(
            "listening on %s:%d id=%s tls=%s lb_tls=%s auth_token=%s",
            config.host,
            self.port,
            self.id,
            tls,
            self._lb_tls,
            "set" if config.token is not None else "none",
        )
        await self.agent.start(self.port)
        return self.port

    def _report_soon(self) -> None:
        # The queue moved (or we are saturated): tell the LB soon, not at the next interval.
        self.agent.report_now()

    async def stop(self) -> None:
        await self.agent.stop()
        self.compute.close()
        log.info("stopped id=%s completed=%d", self.id, self.compute.counters.completed)


async def serve(config: BackendConfig) -> int:
    server = BackendServer(config)
    await server.start()
    sig = await serving.wait_for_signal()
    log.info("stopping on %s id=%s", sig.name, server.id)
    await server.stop()
    return 0
