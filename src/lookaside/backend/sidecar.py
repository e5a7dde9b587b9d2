"""``lookaside agent``: a sidecar that keeps a server it does not run known to the LB.

For servers in any language (Go, Java, Node, a Python server without
lookaside): the sidecar registers the target's address, keeps the lease with
the same :class:`~lookaside.backend.reporter.LoadReporter` the in-process agent
uses, and reports:

* **serving state**, from the target's ``grpc.health.v1``: a ``Watch`` stream
  (pushed changes), or, where the target does not implement ``Watch``, a
  ``Check`` every :attr:`SidecarConfig.health_poll_interval` seconds. NOT_SERVING,
  SERVICE_UNKNOWN, a failed ``Check`` or an unreachable target are all
  NOT_SERVING: the LB keeps the lease but hands the backend out no more, and a
  report goes out at once on every flip, so the LB follows within a fraction
  of a second. A ``Watch`` stream says nothing when the target hangs (stopped,
  or a network path that drops packets), so while watching, a ``Check`` every
  :attr:`SidecarConfig.liveness_interval` seconds must also answer within
  :attr:`SidecarConfig.health_timeout`;
* **load**, from the target's ORCA out-of-band service
  (``xds.service.orca.v3.OpenRcaService``, gRFC A51) when it has one: grpc-go,
  grpc-java and C++ servers can serve it, and so does a Python server with
  ``lookaside.BackendAgent``. Without it (``UNIMPLEMENTED``) the sidecar
  reports what it can observe from outside: the serving state, load 0.

On stop (SIGTERM) it deregisters, then exits 0; the target keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lookaside import addresses, serving
from lookaside.backend import orca
from lookaside.backend.agent import AgentConfig
from lookaside.backend.reporter import LoadReporter
from lookaside.backoff import Backoff
from lookaside.channels import dial
from lookaside.security import TlsConfig, Token, bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb

log = logging.getLogger("lookaside.sidecar")

SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True)
class SidecarConfig:
    """Everything ``lookaside agent`` can be told; every default lives here."""

    lb: str  # the LB, or several replicas "a:1,b:2"
    target: str  # HOST:PORT of the server to register
    service: str  # the service name clients ask the LB for
    id: str = ""  # unique backend id; empty = "ADVERTISE_HOST:PORT"
    advertise_host: str = ""  # the address clients dial; empty = the target's host
    health_service: str = ""  # the grpc.health.v1 service to follow; "" = the whole server
    health_poll_interval: float = 0.25  # Check period when the target has no Watch
    health_timeout: float = 0.5  # a Check slower than this counts as a failure
    liveness_interval: float = 1.0  # while watching, a Check this often catches a hung target
    capacity: int = AgentConfig.capacity
    weight: float = AgentConfig.weight
    report_interval: float = AgentConfig.report_interval
    token: Token | None = None  # the LB's backend token
    tls: TlsConfig = field(default_factory=TlsConfig)  # how to dial the LB

    def __post_init__(self) -> None:
        addresses.lb_addresses(self.lb, "--lb")
        target = addresses.host_port(self.target, "--target")
        if target.host in ("0.0.0.0", "::") and not self.advertise_host:
            raise ValueError("--target on all interfaces needs --advertise-host")
        if not self.service:
            raise ValueError("--service: must not be empty")
        if min(self.health_poll_interval, self.health_timeout, self.liveness_interval) <= 0:
            raise ValueError("health poll interval, timeout and liveness interval must be > 0")
        if self.report_interval <= 0:
            raise ValueError("--report-interval must be > 0")

    @property
    def target_address(self) -> addresses.HostPort:
        return addresses.host_port(self.target, "--target")

    @property
    def backend_id(self) -> str:
        return self.id or str(addresses.HostPort(self.advertised_host, self.target_address.port))

    @property
    def advertised_host(self) -> str:
        return self.advertise_host or self.target_address.host


class TargetHealth:
    """Follows the target's ``grpc.health.v1``; ``on_change(serving)`` on every flip."""

    def __init__(
        self,
        channel: aio.Channel,
        config: SidecarConfig,
        on_change: Callable[[bool], None],
    ) -> None:
        self._stub = health_pb2_grpc.HealthStub(channel)
        self._request = health_pb2.HealthCheckRequest(service=config.health_service)
        self._config = config
        self._on_change = on_change
        self.serving = False
        self.known = asyncio.Event()  # set once the first answer (or failure) is in

    def _set(self, serving: bool, why: str) -> None:
        self.known.set()
        if serving != self.serving:
            self.serving = serving
            log.info("target %s serving=%s (%s)", self._config.target, serving, why)
            self._on_change(serving)

    async def run(self) -> None:
        liveness = asyncio.create_task(self._checks(self._config.liveness_interval))
        try:
            await self._watch()  # returns only when the target has no Watch
        finally:
            liveness.cancel()
        log.info("target %s has no health Watch; polling Check", self._config.target)
        await self._checks(self._config.health_poll_interval)

    async def _watch(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async for response in self._stub.Watch(self._request):
                    backoff.reset()
                    self._set(response.status == SERVING, "watch")
                self._set(False, "watch ended")
            except aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    return
                self._set(False, f"watch failed: {error.code().name}")
            await asyncio.sleep(min(backoff.next_delay(), self._config.health_poll_interval))

    async def _checks(self, period: float) -> None:
        while True:
            try:
                response = await self._stub.Check(
                    self._request, timeout=self._config.health_timeout
                )
                self._set(response.status == SERVING, "check")
            except aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.CANCELLED:
                    self._set(False, f"check failed: {error.code().name}")
            await asyncio.sleep(period)


class TargetLoad:
    """The target's latest ORCA out-of-band report, or ``None`` while it has sent none."""

    def __init__(self, channel: aio.Channel, interval: float) -> None:
        self._channel = channel
        self._interval = interval
        self.latest: pb.LoadReport | None = None
        self.available = True

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async for report in orca.stream_core_metrics(self._channel, self._interval):
                    backoff.reset()
                    self.latest = orca.from_orca(report)
            except aio.AioRpcError as error:
                self.latest = None
                if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self.available = False
                    log.info("target has no ORCA service; reporting its health only")
                    return
            await asyncio.sleep(backoff.next_delay())


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self._lb_channel = dial(config.lb, config.tls.channel_credentials())
        self._target_channel = dial(str(config.target_address))
        self.health = TargetHealth(self._target_channel, config, self._health_changed)
        self.load = TargetLoad(self._target_channel, config.report_interval)
        registration = pb.BackendInfo(
            id=config.backend_id,
            address=config.advertised_host,
            port=config.target_address.port,
            service_name=config.service,
            capacity=config.capacity,
            weight=config.weight,
        )
        self.reporter = LoadReporter(
            self._lb_channel,
            registration,
            self.report,
            config.report_interval,
            metadata=bearer_metadata(config.token),
        )
        self._tasks: list[asyncio.Task[None]] = []

    def report(self) -> pb.LoadReport:
        report = pb.LoadReport()
        if self.load.latest is not None:
            report.CopyFrom(self.load.latest)
        report.serving_state = pb.SERVING if self.health.serving else pb.NOT_SERVING
        return report

    def _health_changed(self, serving: bool) -> None:
        self.reporter.report_now()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.health.run(), name="target-health"),
            asyncio.create_task(self.load.run(), name="target-orca"),
        ]
        # Register once the target's state is known, so it is not handed out before.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.health.known.wait(), 2 * self.config.health_timeout)
        self.reporter.start()
        log.info(
            "sidecar for %s id=%s service=%s lb=%s",
            self.config.target,
            self.config.backend_id,
            self.config.service,
            self.config.lb,
        )

    async def stop(self) -> None:
        await self.reporter.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._target_channel.close(None)
        await self._lb_channel.close(None)


async def serve(config: SidecarConfig) -> int:
    sidecar = Sidecar(config)
    await sidecar.start()
    sig = await serving.wait_for_signal()
    log.info("stopping on %s id=%s", sig.name, config.backend_id)
    await sidecar.stop()
    return 0
