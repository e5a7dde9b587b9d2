"""ORCA reports to and from lookaside's load reports, and the cached trailer (no sockets)."""

from __future__ import annotations

import math

from xds.data.orca.v3 import orca_load_report_pb2 as orca_pb

from lookaside.backend import orca
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.validation import MAX_LOAD


def test_a_report_survives_the_round_trip_through_orca() -> None:
    report = pb.LoadReport(
        id="b",
        load=0.7,
        cpu_utilization=0.4,
        application_utilization=0.6,
        rps_fractional=120.5,
        eps=2.0,
        mem_utilization=0.3,
        named_metrics={"queue": 3.0},
        requests_in_flight=5,
        latency_ms=12.5,
    )
    wire = orca.to_orca(report)
    assert wire.named_metrics[orca.RIF_METRIC] == 5.0
    back = orca.from_orca(orca_pb.OrcaLoadReport.FromString(wire.SerializeToString()))
    assert back.load == 0.6  # application utilisation, as A58 weighs it
    assert (back.cpu_utilization, back.rps_fractional, back.eps) == (0.4, 120.5, 2.0)
    assert (back.requests_in_flight, back.latency_ms) == (5, 12.5)
    assert dict(back.named_metrics) == {"queue": 3.0}


def test_figures_from_a_target_are_clipped_to_what_the_lb_accepts() -> None:
    wire = orca_pb.OrcaLoadReport(
        cpu_utilization=math.nan,
        application_utilization=-1.0,
        rps=7,  # the deprecated integer field, used when rps_fractional is absent
        eps=math.inf,
        named_metrics={"": 1.0, "x" * 200: 1.0, "ok": 2e12, orca.RIF_METRIC: 1e30},
    )
    back = orca.from_orca(wire)
    assert (back.cpu_utilization, back.application_utilization, back.load) == (0.0, 0.0, 0.0)
    assert (back.rps_fractional, back.eps) == (7.0, 0.0)  # not a number: unknown
    assert dict(back.named_metrics) == {"ok": MAX_LOAD}
    assert back.requests_in_flight > 0


def test_the_trailer_is_measured_again_only_after_its_refresh() -> None:
    now = [0.0]
    calls: list[int] = []

    def measure() -> pb.LoadReport:
        calls.append(1)
        return pb.LoadReport(rps_fractional=float(len(calls)))

    cache = orca.TrailerCache(measure, refresh=0.1, clock=lambda: now[0])
    key, first = cache.entry()
    assert key == "endpoint-load-metrics-bin"
    assert cache.entry()[1] is first and len(calls) == 1
    now[0] = 0.2
    second = orca_pb.OrcaLoadReport.FromString(cache.entry()[1])
    assert second.rps_fractional == 2.0
