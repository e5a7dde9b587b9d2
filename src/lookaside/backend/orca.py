"""ORCA (Open Request Cost Aggregation) for the rest of the gRPC world, gRFC A51.

Stock gRPC clients that balance with client-side weighted round robin (gRFC
A58) weigh each backend by ``qps / (utilization + eps / qps * penalty)``, with
``utilization`` the ``application_utilization`` (else ``cpu_utilization``) a
backend reports. A Python server has no ORCA API in grpcio; the agent gives it
both of A51's ways:

* per call: a serialized ``xds.data.orca.v3.OrcaLoadReport`` in the trailer
  ``endpoint-load-metrics-bin`` of every call (:class:`TrailerCache` keeps the
  bytes for :data:`TRAILER_REFRESH` seconds, so a call costs a tuple, not a
  serialisation);
* out of band: ``xds.service.orca.v3.OpenRcaService/StreamCoreMetrics``, one
  report every ``max(report_interval asked, min_interval)``. The ``xds-protos``
  package ships the messages but no gRPC stub, so the service is a generic
  handler and :func:`stream_core_metrics` the generic client call the sidecar
  uses to read a target's reports.

Beyond the standard fields, the agent puts :data:`RIF_METRIC` and
:data:`LATENCY_METRIC` in ``named_metrics``, so a sidecar in front of a
lookaside-agent server reads them back as the report's own fields.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio
from xds.data.orca.v3 import orca_load_report_pb2 as orca_pb
from xds.service.orca.v3 import orca_pb2 as orca_service_pb

from lookaside.convert import MAX_REQUESTS_IN_FLIGHT
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.validation import MAX_ID_LENGTH, MAX_LOAD, MAX_NAMED_METRICS

TRAILER_KEY = "endpoint-load-metrics-bin"
SERVICE_NAME = "xds.service.orca.v3.OpenRcaService"
METHOD = f"/{SERVICE_NAME}/StreamCoreMetrics"
#: Seconds a per-call trailer's bytes are reused before they are measured again.
TRAILER_REFRESH = 0.1
#: The shortest out-of-band interval served (A51's default is 30 s; lookaside's
#: sidecar asks for one report per second, one small message per client).
DEFAULT_MIN_INTERVAL = 1.0
RIF_METRIC = "requests_in_flight"
LATENCY_METRIC = "latency_ms"

if TYPE_CHECKING:
    GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    GenericHandler = grpc.GenericRpcHandler


def to_orca(report: pb.LoadReport) -> orca_pb.OrcaLoadReport:
    """A lookaside load report as ORCA sees it (utilisation, rates, named metrics)."""
    named = dict(report.named_metrics)
    named[RIF_METRIC] = float(report.requests_in_flight)
    named[LATENCY_METRIC] = report.latency_ms
    return orca_pb.OrcaLoadReport(
        cpu_utilization=report.cpu_utilization,
        mem_utilization=report.mem_utilization,
        application_utilization=report.application_utilization,
        rps_fractional=report.rps_fractional,
        eps=report.eps,
        named_metrics=named,
    )


def _figure(value: float) -> float:
    """A figure a target sent, made one the LB accepts (finite, 0..MAX_LOAD)."""
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), MAX_LOAD)


def from_orca(report: orca_pb.OrcaLoadReport) -> pb.LoadReport:
    """A target's ORCA report as a lookaside load report (no id; figures clipped to the limits).

    ``load`` is the application utilisation, else the CPU utilisation (A58's choice).
    """
    named = {
        name: _figure(value)
        for name, value in report.named_metrics.items()
        if 0 < len(name) <= MAX_ID_LENGTH and name not in (RIF_METRIC, LATENCY_METRIC)
    }
    rif = report.named_metrics.get(RIF_METRIC, 0.0)
    utilization = _figure(report.application_utilization)
    cpu = _figure(report.cpu_utilization)
    return pb.LoadReport(
        load=utilization or cpu,
        cpu_utilization=cpu,
        application_utilization=utilization,
        mem_utilization=_figure(report.mem_utilization),
        rps_fractional=_figure(report.rps_fractional or float(report.rps)),
        eps=_figure(report.eps),
        named_metrics=dict(sorted(named.items())[:MAX_NAMED_METRICS]),
        requests_in_flight=int(min(_figure(rif), MAX_REQUESTS_IN_FLIGHT)),
        latency_ms=_figure(report.named_metrics.get(LATENCY_METRIC, 0.0)),
    )


class TrailerCache:
    """The ``endpoint-load-metrics-bin`` trailer, re-measured at most every ``refresh`` s."""

    def __init__(
        self,
        measure: Callable[[], pb.LoadReport],
        refresh: float = TRAILER_REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self._refresh = refresh
        self._clock = clock
        self._lock = threading.Lock()
        self._expires = -math.inf
        self._entry: tuple[str, bytes] = (TRAILER_KEY, b"")

    def entry(self) -> tuple[str, bytes]:
        now = self._clock()
        if now < self._expires:
            return self._entry
        with self._lock:
            if now >= self._expires:
                data = to_orca(self._measure()).SerializeToString()
                self._entry = (TRAILER_KEY, data)
                self._expires = now + self._refresh
            return self._entry


def _interval(request: orca_service_pb.OrcaLoadReportRequest, min_interval: float) -> float:
    asked = request.report_interval.ToTimedelta().total_seconds()
    return max(asked, min_interval)


def _serializers() -> dict[str, Any]:
    return {
        "request_deserializer": orca_service_pb.OrcaLoadReportRequest.FromString,
        "response_serializer": orca_pb.OrcaLoadReport.SerializeToString,
    }


def aio_handler(
    measure: Callable[[], pb.LoadReport], min_interval: float = DEFAULT_MIN_INTERVAL
) -> GenericHandler:
    """``OpenRcaService`` for a ``grpc.aio`` server: a report now, then every interval."""

    async def stream(
        request: orca_service_pb.OrcaLoadReportRequest, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[orca_pb.OrcaLoadReport]:
        interval = _interval(request, min_interval)
        while True:
            yield to_orca(measure())
            await asyncio.sleep(interval)

    handler = grpc.unary_stream_rpc_method_handler(stream, **_serializers())
    return grpc.method_handlers_generic_handler(SERVICE_NAME, {"StreamCoreMetrics": handler})


def sync_handler(
    measure: Callable[[], pb.LoadReport],
    min_interval: float = DEFAULT_MIN_INTERVAL,
    stopping: threading.Event | None = None,
) -> GenericHandler:
    """``OpenRcaService`` for a blocking ``grpc.Server`` (one worker thread per stream)."""
    stop = stopping or threading.Event()

    def stream(
        request: orca_service_pb.OrcaLoadReportRequest, context: grpc.ServicerContext
    ) -> Iterator[orca_pb.OrcaLoadReport]:
        interval = _interval(request, min_interval)
        ended = threading.Event()
        context.add_callback(ended.set)
        while context.is_active() and not stop.is_set():
            yield to_orca(measure())
            if ended.wait(interval):
                return

    handler = grpc.unary_stream_rpc_method_handler(stream, **_serializers())
    return grpc.method_handlers_generic_handler(SERVICE_NAME, {"StreamCoreMetrics": handler})


def stream_core_metrics(
    channel: aio.Channel, interval: float
) -> aio.UnaryStreamCall[Any, orca_pb.OrcaLoadReport]:
    """Open ``StreamCoreMetrics`` on ``channel`` asking for a report every ``interval`` s."""
    call = channel.unary_stream(
        METHOD,
        request_serializer=orca_service_pb.OrcaLoadReportRequest.SerializeToString,
        response_deserializer=orca_pb.OrcaLoadReport.FromString,
    )
    request = orca_service_pb.OrcaLoadReportRequest()
    request.report_interval.FromTimedelta(datetime.timedelta(seconds=interval))
    return call(request)
