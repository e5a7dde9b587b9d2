"""LRS: per-locality counts become per-backend (finished, failed) for outlier ejection."""

from __future__ import annotations

from envoy.config.endpoint.v3 import load_report_pb2
from envoy.service.load_stats.v3 import lrs_pb2

from lookaside.lb.xds.lrs import LoadReportingService


def locality(backend_id: str, ok: int, bad: int) -> load_report_pb2.UpstreamLocalityStats:
    stats = load_report_pb2.UpstreamLocalityStats(
        total_successful_requests=ok, total_error_requests=bad
    )
    stats.locality.sub_zone = backend_id
    return stats


def test_first_response_asks_for_every_cluster_at_the_interval() -> None:
    response = LoadReportingService(lambda service, counts: None, 2.5).first_response()
    assert response.send_all_clusters
    assert response.load_reporting_interval.ToNanoseconds() == 2_500_000_000


def test_reports_become_per_backend_counts_for_the_sink() -> None:
    received: list[tuple[str, list[tuple[str, int, int]]]] = []
    service = LoadReportingService(lambda s, counts: received.append((s, list(counts))), 2.0)
    cluster = load_report_pb2.ClusterStats(
        cluster_name="compute",
        cluster_service_name="compute",
        upstream_locality_stats=[
            locality("a", 10, 0),
            locality("b", 0, 4),
            locality("idle", 0, 0),  # no calls finished: nothing to say
            locality("", 5, 5),  # not one of ours
        ],
    )
    service.receive(lrs_pb2.LoadStatsRequest(cluster_stats=[cluster]))
    assert received == [("compute", [("a", 10, 0), ("b", 4, 4)])]
    assert service.reports == 1
    service.receive(lrs_pb2.LoadStatsRequest())  # the first request carries no stats
    assert service.reports == 1
