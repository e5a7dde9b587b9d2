"""The admin HTTP endpoint any lookaside server can add: ``/metrics``, ``/healthz``, ``/readyz``.

Shared by the LB (which adds its status page on top, see
:mod:`lookaside.lb.admin`) and by anything else that has a Prometheus
registry to show, such as a backend. It runs on aiohttp inside the server's
own event loop, so a scrape reads the live objects without locks or threads.

* ``/metrics``: the registry in the Prometheus text format
  (``prometheus_client.generate_latest``).
* ``/healthz``: 200 while the process runs (liveness).
* ``/readyz``: 200 once ``ready()`` says so, else 503 (readiness: the gRPC
  server listens and says SERVING).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from lookaside import serving

log = logging.getLogger("lookaside.admin")

Route = web.RouteDef


def admin_app(
    registry: CollectorRegistry,
    ready: Callable[[], bool],
    routes: Iterable[Route] = (),
) -> web.Application:
    """An aiohttp app with the three shared endpoints, plus ``routes``."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    app = web.Application()
    app.add_routes(
        [
            web.get("/metrics", metrics),
            web.get("/healthz", healthz),
            web.get("/readyz", readyz),
            *routes,
        ]
    )
    return app


class AdminServer:
    """Serves an admin app on ``host:port`` (0 = any free port; :attr:`port` tells)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        # No access log (no line per request); stop open event streams within a second.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self.host = host
        self.requested_port = port
        self.port = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> int:
        """Listen; a port in use or a bad host is a :class:`serving.StartupError` (one line)."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.requested_port, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise serving.StartupError(
                f"cannot listen on {serving.join_host_port(self.host, self.requested_port)} "
                f"(admin): {serving.describe_os_error(error)}"
            ) from None
        server = site._server  # aiohttp keeps the asyncio server here; it knows the real port
        sockets = getattr(server, "sockets", None) or ()
        self.port = sockets[0].getsockname()[1] if sockets else self.requested_port
        log.info("admin on %s", self.url)
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()
