"""``lookaside.BackendAgent``: put any Python gRPC server behind lookaside.

The agent attaches to a server the application builds and runs, ``grpc.aio``
or blocking ``grpc.Server``::

    agent = BackendAgent("127.0.0.1:50051", service="userservice.v1.Echo", port=50061)
    server = grpc.aio.server(interceptors=[agent.aio_interceptor])
    add_EchoServicer_to_server(Echo(), server)
    agent.attach(server)  # grpc.health.v1 (unless you pass yours) and ORCA
    server.add_insecure_port("127.0.0.1:50061")
    await server.start()
    await agent.start()   # register, keep the lease, report load
    await agent.run_until_signal()  # or agent.stop() when you choose: deregister,
                                    # drain, let calls in flight finish

(``grpc.server(executor, interceptors=[agent.sync_interceptor])`` with
``agent.start_sync()`` and ``agent.run_until_signal_sync()`` / ``agent.stop_sync()``
for a blocking server; the agent then runs its reporting on a thread of its own.)

What it does:

* registers with the LB and keeps the lease with a ``StreamLoad`` stream
  (:class:`~lookaside.backend.reporter.LoadReporter`);
* measures load with a server interceptor (calls in flight, requests and
  errors per second, utilisation, a latency EWMA; see
  :mod:`lookaside.backend.call_stats`) and reports it;
* follows the server's ``grpc.health.v1`` state: a NOT_SERVING server is
  reported NOT_SERVING, keeps its lease and is handed out again once SERVING;
* speaks ORCA (gRFC A51): the ``endpoint-load-metrics-bin`` trailer on every
  call and the out-of-band ``OpenRcaService``, so stock clients with
  client-side weighted round robin (gRFC A58) get real figures;
* on stop: health NOT_SERVING, deregister, keep serving ``drain_seconds``
  (picks handed out just before still arrive), then stop the server with
  ``shutdown_grace`` so calls in flight finish.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio

from lookaside import addresses, serving
from lookaside.backend import orca
from lookaside.backend.call_stats import CallStats, Clock, LoadMeter
from lookaside.backend.health import HealthFollower, HealthServicer, new_servicer
from lookaside.backend.interceptor import AioLoadInterceptor, SyncLoadInterceptor
from lookaside.backend.reporter import DEFAULT_MIN_GAP, LoadReporter
from lookaside.channels import dial
from lookaside.model import DEFAULT_SERVICE
from lookaside.security import TlsConfig, Token, bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.validation import MAX_LOAD

log = logging.getLogger("lookaside.backend")

#: Adjusts a measured report before it is sent (the demo Compute sets its own load).
ReportHook = Callable[[pb.LoadReport], None]
AnyServer = aio.Server | grpc.Server


@dataclass(frozen=True)
class AgentConfig:
    """Everything a :class:`BackendAgent` can be told; every default lives here."""

    lb: str = "127.0.0.1:50051"  # the LB, or several replicas "a:1,b:2"
    service: str = DEFAULT_SERVICE  # the service name clients ask the LB for
    port: int = 0  # the port clients dial (0: pass it to start() once bound)
    host: str = "127.0.0.1"  # the address clients dial
    id: str = ""  # unique backend id; empty = "HOST:PORT"
    capacity: int = 1  # calls the server handles well at once; load = in flight / capacity
    weight: float = 1.0  # static weight for weighted policies
    report_interval: float = 1.0  # seconds between reports when nothing changes
    report_min_gap: float = DEFAULT_MIN_GAP  # early reports, at most one per this many seconds
    drain_seconds: float = 0.5  # on stop, keep serving this long after deregistering
    shutdown_grace: float = 30.0  # longest wait for calls in flight on stop
    orca_min_interval: float = orca.DEFAULT_MIN_INTERVAL  # shortest OOB ORCA interval served
    token: Token | None = None  # the LB's backend token; None = send none
    tls: TlsConfig = field(default_factory=TlsConfig)  # how to dial the LB; default plaintext

    def __post_init__(self) -> None:
        if not self.lb.startswith(addresses.GRPC_SCHEMES):  # a gRPC target is passed through
            addresses.lb_addresses(self.lb, "lb_target")
        addresses.port_number(self.port, "port", allow_zero=True)
        if self.capacity < 1:
            raise ValueError("capacity must be at least 1")
        if self.report_interval <= 0 or self.report_min_gap < 0:
            raise ValueError("report_interval must be > 0 and report_min_gap >= 0")
        if self.drain_seconds < 0 or self.shutdown_grace < 0:
            raise ValueError("drain_seconds and shutdown_grace must be >= 0")


class BackendAgent:
    """Registers a server with the LB, reports its load and serving state, drains it on stop."""

    def __init__(
        self,
        lb_target: str,
        *,
        service: str,
        port: int,
        report_hook: ReportHook | None = None,
        clock: Clock = time.monotonic,
        **options: Any,
    ) -> None:
        self.config = AgentConfig(lb=lb_target, service=service, port=port, **options)
        self.stats = CallStats(clock)
        self.meter = LoadMeter(self.stats, self.config.capacity, clock)
        self._report_hook = report_hook
        self._trailer = orca.TrailerCache(self.report, clock=clock)
        self._aio_interceptor: AioLoadInterceptor | None = None
        self._sync_interceptor: SyncLoadInterceptor | None = None
        self._server: AnyServer | None = None
        self._follower: HealthFollower | None = None
        self._orca_stop = threading.Event()
        self._serving = True
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None  # the reporting loop of start_sync()
        self._channel: aio.Channel | None = None
        self.reporter: LoadReporter | None = None
        self.port = port

    # --- wiring -------------------------------------------------------------

    @property
    def aio_interceptor(self) -> AioLoadInterceptor:
        """Pass to ``grpc.aio.server(interceptors=[...])``."""
        if self._aio_interceptor is None:
            self._aio_interceptor = AioLoadInterceptor(self.stats, self._trailer.entry)
        return self._aio_interceptor

    @property
    def sync_interceptor(self) -> SyncLoadInterceptor:
        """Pass to ``grpc.server(executor, interceptors=[...])``."""
        if self._sync_interceptor is None:
            self._sync_interceptor = SyncLoadInterceptor(self.stats, self._trailer.entry)
        return self._sync_interceptor

    @property
    def health(self) -> HealthServicer:
        """The ``grpc.health.v1`` servicer the agent follows (after :meth:`attach`)."""
        if self._follower is None:
            raise RuntimeError("attach(server) first")
        return self._follower.servicer

    @property
    def id(self) -> str:
        return self.config.id or f"{self.config.host}:{self.port}"

    @property
    def serving_state(self) -> pb.ServingState:
        if self._stopping:
            return pb.DRAINING
        return pb.SERVING if self._serving else pb.NOT_SERVING

    def attach(self, server: AnyServer, health: HealthServicer | None = None) -> None:
        """Add ORCA's service and ``grpc.health.v1`` to ``server`` (before it starts).

        ``health``: the server's own health servicer, if it has one already
        (a stock ``grpc_health`` one); the agent then follows it instead of
        installing its own.
        """
        is_aio = isinstance(server, aio.Server)
        self._server = server
        if health is None:
            health = new_servicer(is_aio)
            from grpc_health.v1 import health_pb2_grpc

            health_pb2_grpc.add_HealthServicer_to_server(health, server)
        self._follower = HealthFollower(health, [self.config.service], self._health_changed)
        handler = (
            orca.aio_handler(self.report, self.config.orca_min_interval)
            if is_aio
            else orca.sync_handler(self.report, self.config.orca_min_interval, self._orca_stop)
        )
        server.add_generic_rpc_handlers((handler,))

    # --- reports ------------------------------------------------------------

    def report(self) -> pb.LoadReport:
        """The report the LB (and ORCA) get now: measured, then adjusted by the hook."""
        reading = self.meter.measure()
        report = pb.LoadReport(
            id=self.id,
            load=min(reading.load, MAX_LOAD),
            cpu_utilization=min(reading.cpu_utilization, MAX_LOAD),
            application_utilization=reading.utilization,
            rps_fractional=reading.rps,
            eps=reading.eps,
            requests_in_flight=reading.requests_in_flight,
            latency_ms=reading.latency_ms,
            serving_state=self.serving_state,
        )
        if self._report_hook is not None:
            self._report_hook(report)
        return report

    def report_now(self) -> None:
        """Send a report soon (throttled by ``report_min_gap``); callable from any thread."""
        loop, reporter = self._loop, self.reporter
        if loop is None or reporter is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            reporter.report_now()
        else:
            loop.call_soon_threadsafe(reporter.report_now)

    def _health_changed(self, serving: bool) -> None:
        self._serving = serving
        log.info("health id=%s serving=%s", self.id, serving)
        self.report_now()

    # --- lifecycle (asyncio) ------------------------------------------------

    async def start(self, port: int | None = None) -> None:
        """Register (``port``: the one the server bound, when the config said 0)."""
        if port is not None:
            self.port = port
        if not 1 <= self.port <= 65535:
            raise ValueError(
                f"port: {self.port} is not a port clients can dial; pass the bound one"
            )
        config = self.config
        self._loop = asyncio.get_running_loop()
        self._channel = dial(config.lb, config.tls.channel_credentials())
        registration = pb.BackendInfo(
            id=self.id,
            address=config.host,
            port=self.port,
            service_name=config.service,
            capacity=config.capacity,
            weight=config.weight,
        )
        self.reporter = LoadReporter(
            self._channel,
            registration,
            self.report,
            config.report_interval,
            metadata=bearer_metadata(config.token),
            min_gap=config.report_min_gap,
        )
        self.reporter.start()
        log.info("agent started id=%s service=%s lb=%s", self.id, config.service, config.lb)

    async def stop(self, grace: float | None = None) -> None:
        """Deregister, drain, stop the attached server letting calls in flight finish."""
        if self._stopping:
            return
        self._stopping = True
        if self._follower is not None:
            shutdown = self._follower.servicer.enter_graceful_shutdown()
            if asyncio.iscoroutine(shutdown):
                await shutdown
        if self.reporter is not None:
            await self.reporter.stop()
        await asyncio.sleep(self.config.drain_seconds)
        await self._stop_server(self.config.shutdown_grace if grace is None else grace)
        if self._channel is not None:
            await self._channel.close(None)
        log.info("agent stopped id=%s calls=%d", self.id, self.stats.finished)

    async def run_until_signal(self) -> None:
        """Wait for SIGTERM or SIGINT (Ctrl-C), then :meth:`stop`."""
        sig = await serving.wait_for_signal()
        log.info("stopping on %s id=%s", sig.name, self.id)
        await self.stop()

    async def _stop_server(self, grace: float) -> None:
        server, self._server = self._server, None
        self._orca_stop.set()
        if isinstance(server, aio.Server):
            await server.stop(grace)
        elif server is not None:
            done = server.stop(grace)
            await asyncio.to_thread(done.wait)

    # --- lifecycle (blocking servers) ---------------------------------------

    def start_sync(self, port: int | None = None, timeout: float = 10.0) -> None:
        """:meth:`start` for a blocking server: reporting runs on a thread of its own."""
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=loop.run_forever, name="lookaside-agent", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.start(port), loop).result(timeout)

    def run_until_signal_sync(self) -> None:
        """Block until SIGTERM or SIGINT (Ctrl-C), then :meth:`stop_sync` (main thread only)."""
        received: list[int] = []
        woken = threading.Event()

        def on_signal(number: int, frame: object) -> None:
            received.append(number)
            woken.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            woken.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("stopping on %s id=%s", signal.Signals(received[0]).name, self.id)
        self.stop_sync()

    def stop_sync(self, grace: float | None = None) -> None:
        """:meth:`stop` for a blocking server; returns once the server has stopped."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(grace), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
