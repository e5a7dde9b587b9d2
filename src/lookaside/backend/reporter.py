"""Keeps a backend registered with the LB and its load known there.

The loop: register (retrying with jittered exponential back-off until the LB
answers), then hold a ``StreamLoad`` stream open and send a report every
interval. ``NOT_FOUND`` (the LB restarted and forgot us) or a broken stream
sends us back to registering. ``stop()`` deregisters first, so the LB stops
handing us out before we stop serving.

While the LB is down the backend keeps serving the clients that already know
it and keeps trying to register (back-off capped at :data:`MAX_BACKOFF`
seconds, and the channel's own reconnect back-off at one second, see
:mod:`lookaside.channels`), so it is back in the LB's registry within about two
seconds of the LB's return.

Lease identity: the LB's ``RegisterResponse.lease_id`` is stamped on every
report, on the ``Deregister`` and on later registrations (``BackendInfo.lease_id``),
so a call can only ever act on this process's own registration, and the
lease survives a move to another LB replica. A reporter that never held a lease (every
registration was refused, e.g. ``ALREADY_EXISTS`` because a live backend has
the id) sends no ``Deregister`` at all on stop.

``report_now()`` asks for a report before the interval is up. The backend
calls it whenever its queue changes (and when it starts rejecting tasks), so
the LB sees load moves within ``min_gap`` seconds instead of a whole interval
later: reports are event-driven, throttled to at most one per ``min_gap``, with
one every ``interval`` at least (that one keeps the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
from grpc import aio

from lookaside.backoff import Backoff
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.backend")

Metadata = Sequence[tuple[str, str]]
RPC_TIMEOUT = 3.0
DEFAULT_MIN_GAP = 0.05  # seconds between two reports, however often the load moves
SATURATED = 1.0  # a report at this load or above is never held back by the LB's gap


class LoadReporter:
    def __init__(
        self,
        channel: aio.Channel,
        registration: pb.BackendInfo,
        make_report: Callable[[], pb.LoadReport],
        interval: float,
        metadata: Metadata = (),
        min_gap: float = DEFAULT_MIN_GAP,
    ) -> None:
        self._stub = pb_grpc.LoadBalancerStub(channel)
        self._min_gap = min_gap
        self._gap = min_gap  # the larger of ours and the LB's (see _obey)
        self._registration = registration
        self._make_report = make_report
        self._interval = interval
        self._metadata = tuple(metadata)
        self._leaving = asyncio.Event()  # no more reports or registrations
        self._stopping = asyncio.Event()  # close the load stream
        self._urgent = asyncio.Event()  # report before the interval is up
        self._task: asyncio.Task[None] | None = None
        self.registered = asyncio.Event()
        self.lease_id = ""  # from the LB's last RegisterResponse; "" from older LBs

    def report_now(self) -> None:
        """Send the next report early: at once, or ``min_gap`` after the previous one."""
        self._urgent.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="load-reporter")

    async def _register(self, backoff: Backoff) -> float:
        """Register until it works; returns the report interval to use."""
        backend_id = self._registration.id
        while not self._leaving.is_set():
            try:
                response = await self._stub.RegisterBackend(
                    self._renewal(), timeout=RPC_TIMEOUT, metadata=self._metadata
                )
            except aio.AioRpcError as error:
                delay = backoff.next_delay()
                log.warning(
                    "register failed id=%s code=%s detail=%r retry_in=%.2fs",
                    backend_id,
                    error.code().name,
                    error.details(),
                    delay,
                )
                await self._sleep(delay)
                continue
            backoff.reset()
            self.lease_id = response.lease_id
            self.registered.set()
            log.info("registered id=%s lease_ttl=%gs", backend_id, response.lease_ttl_seconds)
            return self._obey(response)
        return self._interval

    def _renewal(self) -> pb.BackendInfo:
        """The registration, naming the lease held so far: any LB replica keeps it."""
        request = pb.BackendInfo()
        request.CopyFrom(self._registration)
        request.lease_id = self.lease_id
        return request

    def _obey(self, response: pb.RegisterResponse) -> float:
        """The pace the LB asks for (it slows a large fleet down); the interval to use.

        Reports come at most one per gap, the larger of ours and the LB's
        ``min_report_gap_seconds`` (except a saturated one, see :meth:`_reports`),
        and at least every interval, never rarer than a third of the lease TTL.
        """
        interval = max(self._interval, response.min_report_gap_seconds)
        if response.lease_ttl_seconds > 0:
            interval = min(interval, response.lease_ttl_seconds / 3)
        self._gap = max(self._min_gap, response.min_report_gap_seconds)
        return interval

    async def _reports(self, interval: float) -> AsyncIterator[pb.LoadReport]:
        while not self._leaving.is_set():
            self._urgent.clear()
            report: pb.LoadReport | None = self._stamped_report()
            while report is not None:
                yield report
                own_gap = min(self._min_gap, interval)
                await self._sleep(own_gap)
                report = await self._saturated_within(min(self._gap, interval) - own_gap)
            await self._sleep(interval - min(self._gap, interval), self._urgent)
        # Keep the stream open until we have deregistered: its end marks us down.
        await self._stopping.wait()

    def _stamped_report(self) -> pb.LoadReport:
        """A fresh report naming this backend and the lease it holds."""
        report = self._make_report()
        report.id = self._registration.id
        report.lease_id = self.lease_id
        return report

    async def _saturated_within(self, seconds: float) -> pb.LoadReport | None:
        """Sit out the LB's extra gap, unless a report to send says we are saturated.

        A saturated backend must stop getting picks at once, so the LB never
        throttles that report and neither do we.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        missed = False
        while (left := deadline - loop.time()) > 0 and not self._leaving.is_set():
            await self._sleep(left, self._urgent)
            if self._urgent.is_set():
                self._urgent.clear()
                report = self._stamped_report()
                if report.load >= SATURATED:
                    return report
                missed = True
        if missed:
            self._urgent.set()  # report the change as soon as the gap is over
        return None

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Wait ``seconds``, less if we are leaving or ``wake`` is set."""
        events = [self._leaving] if wake is None else [self._leaving, wake]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _run(self) -> None:
        backoff = Backoff()
        while not self._leaving.is_set():
            interval = await self._register(backoff)
            if self._leaving.is_set():
                return
            try:
                await self._stub.StreamLoad(self._reports(interval), metadata=self._metadata)
            except aio.AioRpcError as error:
                self.registered.clear()
                if self._leaving.is_set():
                    return
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    log.info("lb forgot id=%s; registering again", self._registration.id)
                else:
                    delay = backoff.next_delay()
                    log.warning(
                        "load stream broke id=%s code=%s retry_in=%.2fs",
                        self._registration.id,
                        error.code().name,
                        delay,
                    )
                    await self._sleep(delay)

    async def _deregister(self) -> None:
        backend_id = self._registration.id
        try:
            await self._stub.Deregister(
                pb.DeregisterRequest(id=backend_id, lease_id=self.lease_id),
                timeout=RPC_TIMEOUT,
                metadata=self._metadata,
            )
            log.info("deregistered id=%s", backend_id)
        except aio.AioRpcError as error:
            # NOT_FOUND: already gone; PERMISSION_DENIED: the id has another lease by now.
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                log.warning("deregister failed id=%s code=%s", backend_id, error.code().name)

    async def stop(self) -> None:
        """Stop reporting, deregister, and wait for the load stream to close.

        Reporting stops first, so that no report races the deregistration
        and makes us register again; the stream stays open until the LB has
        answered the Deregister, then closes.
        """
        self._leaving.set()
        if self.lease_id or self.registered.is_set():
            await self._deregister()
        else:
            log.info("never held a lease id=%s; nothing to deregister", self._registration.id)
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, RPC_TIMEOUT)
