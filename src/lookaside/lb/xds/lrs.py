"""Load Reporting Service: stock clients' per-backend call counts feed outlier ejection.

A Cluster with ``lrs_server: self`` makes gRPC clients open
``envoy.service.load_stats.v3.LoadReportingService/StreamLoadStats`` to the LB
(gRFC A27). The LB answers the first request with ``send_all_clusters`` and
the interval it wants, then receives per-locality counts every interval.
Because each backend is its own locality (``sub_zone`` = backend id), these
are per-backend counts of calls finished and failed — what
``ReportClientStats`` carries for lookaside's own clients — and go to the same
sink, :meth:`lookaside.lb.balancer.Balancer.record_client_stats`.

A stock client counts every non-OK status as an error (lookaside's client
counts only transport-level failures), so a backend answering
``INVALID_ARGUMENT`` to bad requests looks failing here; the success-rate and
consecutive-failure rules still need most of its calls to fail.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from envoy.config.endpoint.v3 import load_report_pb2
from envoy.service.load_stats.v3 import lrs_pb2, lrs_pb2_grpc
from google.protobuf import duration_pb2
from grpc import aio

log = logging.getLogger(__name__)

LRS_SERVICE = "envoy.service.load_stats.v3.LoadReportingService"
LRS_METHOD = f"/{LRS_SERVICE}/StreamLoadStats"
#: Per report, at most this many localities are read (a service has at most
#: ``--max-backends`` backends; anything beyond is not a lookaside backend).
MAX_LOCALITIES = 4096

#: ``sink(service, [(backend id, calls finished, calls failed), ...])``
StatsSink = Callable[[str, Iterable[tuple[str, int, int]]], None]


def per_backend(cluster: load_report_pb2.ClusterStats) -> list[tuple[str, int, int]]:
    """(backend id, finished, failed) per locality that names a backend and saw calls."""
    counts = []
    for stats in cluster.upstream_locality_stats[:MAX_LOCALITIES]:
        backend_id = stats.locality.sub_zone
        finished = stats.total_successful_requests + stats.total_error_requests
        if backend_id and finished:
            counts.append((backend_id, finished, stats.total_error_requests))
    return counts


class LoadReportingService(lrs_pb2_grpc.LoadReportingServiceServicer):
    def __init__(self, sink: StatsSink, interval: float) -> None:
        self._sink = sink
        self._interval = interval
        self.reports = 0  # reports received with at least one backend's counts

    def first_response(self) -> lrs_pb2.LoadStatsResponse:
        interval = duration_pb2.Duration()
        interval.FromNanoseconds(round(self._interval * 1e9))
        return lrs_pb2.LoadStatsResponse(send_all_clusters=True, load_reporting_interval=interval)

    def receive(self, request: lrs_pb2.LoadStatsRequest, node: str = "") -> None:
        """Feed one report's counts to the sink (``node``: the stream's, for the log)."""
        for cluster in request.cluster_stats:
            counts = per_backend(cluster)
            if not counts:
                continue
            service = cluster.cluster_service_name or cluster.cluster_name
            self.reports += 1
            log.debug(
                "xds load report node=%s service=%s %s",
                node or request.node.id,
                service,
                " ".join(f"{b}={ok}/{bad}" for b, ok, bad in counts),
            )
            self._sink(service, counts)

    async def StreamLoadStats(
        self,
        request_iterator: AsyncIterator[lrs_pb2.LoadStatsRequest],
        context: aio.ServicerContext[Any, Any],
    ) -> None:
        node = ""
        async for request in request_iterator:
            if not node:
                node = request.node.id or "?"
                log.info("xds load reporting opened node=%s peer=%s", node, context.peer())
                await context.write(self.first_response())
            self.receive(request, node)


def add_lrs_to_server(servicer: LoadReportingService, server: aio.Server) -> None:
    lrs_pb2_grpc.add_LoadReportingServiceServicer_to_server(servicer, server)
