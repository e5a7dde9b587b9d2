"""The LB's admin port: the shared ``/metrics``, ``/healthz``, ``/readyz``, and the status page.

* ``/``: the status page (``static/index.html``, with its CSS and script served
  from ``/static/``; no CDN, so it works offline).
* ``/api/state``: the page's data as JSON (also handy for ``curl | jq``).
* ``/api/events``: the same, pushed as server-sent events after every sample
  (once a second). The page listens here and falls back to polling
  ``/api/state`` every second where EventSource is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from importlib import resources

from aiohttp import web
from prometheus_client import CollectorRegistry

from lookaside import admin_http
from lookaside.lb.admin.fleet import FleetView

log = logging.getLogger("lookaside.admin")

SAMPLE_INTERVAL = 1.0  # seconds between two samples (and two pushes to the page)
MAX_EVENT_STREAMS = 64  # open status pages at once; more get 503
ASSETS = {  # file -> content type; the only files /static/ serves
    "status.css": "text/css",
    "status.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


def _asset(name: str) -> bytes:
    return resources.files("lookaside.lb.admin").joinpath("static", name).read_bytes()


class StatusPage:
    """Samples the fleet once a second and serves it to pages and scripts."""

    def __init__(self, fleet: FleetView, interval: float = SAMPLE_INTERVAL) -> None:
        self.fleet = fleet
        self.interval = interval
        self._sampled = asyncio.Event()
        self._streams = 0
        self._task: asyncio.Task[None] | None = None
        self._page = _asset("index.html")
        self._assets = {name: (_asset(name), kind) for name, kind in ASSETS.items()}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self._index),
            web.get("/static/{name}", self._static),
            web.get("/api/state", self._state),
            web.get("/api/events", self._events),
        ]

    def start(self) -> None:
        self.fleet.sample()
        self._task = asyncio.create_task(self._sample_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.fleet.sample()
            sampled, self._sampled = self._sampled, asyncio.Event()
            sampled.set()

    async def _index(self, _: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        asset = self._assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        body, kind = asset
        return web.Response(body=body, content_type=kind, headers={"Cache-Control": "no-cache"})

    def _json(self) -> str:
        return json.dumps(self.fleet.snapshot(), separators=(",", ":"))

    async def _state(self, _: web.Request) -> web.Response:
        return web.Response(text=self._json(), content_type="application/json")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._streams >= MAX_EVENT_STREAMS:
            raise web.HTTPServiceUnavailable(text=f"{self._streams} status pages are open")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        self._streams += 1
        try:
            while True:
                await response.write(f"data: {self._json()}\n\n".encode())
                await self._sampled.wait()
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the page went away, or the server is stopping
        finally:
            self._streams -= 1
        return response


class LbAdmin:
    """The admin HTTP server of one LB."""

    def __init__(
        self,
        page: StatusPage,
        prometheus: CollectorRegistry,
        ready: Callable[[], bool],
        host: str,
        port: int,
    ) -> None:
        self.page = page
        app = admin_http.admin_app(prometheus, ready, page.routes())
        self._server = admin_http.AdminServer(app, host, port)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return self._server.url

    async def start(self) -> int:
        port = await self._server.start()
        self.page.start()
        return port

    async def stop(self) -> None:
        await self.page.stop()
        await self._server.stop()
