"""The signals the latency policies read: RIF and latency in reports, silence, on the wire."""

from __future__ import annotations

import pytest

from lookaside import convert
from lookaside.backend.latency import LatencyByRif
from lookaside.errors import InvalidArgument
from lookaside.model import Endpoint, LoadMetrics
from lookaside.policies import PickTracker
from lookaside.policies.signals import PickTimes, expected_latency_ms, in_flight
from lookaside.v1 import load_balancer_pb2 as pb


def test_backend_estimate_follows_the_rif_a_call_arrives_at() -> None:
    latency = LatencyByRif()
    assert latency.estimate_ms(0) == 0.0  # nothing finished yet: unknown
    latency.record(0, 0.040)
    latency.record(3, 0.120)
    assert latency.estimate_ms(0) == pytest.approx(40.0)
    assert latency.estimate_ms(3) == pytest.approx(120.0)
    assert latency.estimate_ms(2) == pytest.approx(40.0)  # nearest bucket below
    assert latency.estimate_ms(99) == pytest.approx(120.0)  # the last bucket
    latency.record(0, 0.140)
    assert latency.estimate_ms(0) == pytest.approx(40.0 + 0.2 * 100.0)  # an EWMA


def test_report_fields_travel_to_the_model_and_back() -> None:
    report = pb.LoadReport(id="b1", load=0.5, requests_in_flight=3, latency_ms=42.5)
    backend_id, load, metrics = convert.report_from_pb(report)
    assert (backend_id, metrics.requests_in_flight, metrics.latency_ms) == ("b1", 3, 42.5)
    endpoint = Endpoint(id="b1", address="10.0.0.1", port=1, load=load, metrics=metrics)
    info = convert.endpoint_to_pb(endpoint)
    assert info.last_report.requests_in_flight == 3 and info.last_report.latency_ms == 42.5
    again = convert.endpoint_from_pb(info, registered_at=1.0, reported_at=2.0)
    assert again.metrics.requests_in_flight == 3 and again.metrics.latency_ms == 42.5


@pytest.mark.parametrize(
    ("field", "value"),
    [("requests_in_flight", -1), ("latency_ms", -1.0), ("latency_ms", float("nan"))],
)
def test_bad_report_fields_are_invalid_arguments(field: str, value: float) -> None:
    report = pb.LoadReport(id="b1", load=0.5, **{field: value})
    with pytest.raises(InvalidArgument) as caught:
        convert.report_from_pb(report)
    assert caught.value.field == field


def test_in_flight_counts_picks_since_and_falls_back_to_load() -> None:
    tracker = PickTracker()
    reporting = Endpoint(id="a", address="x", port=1, metrics=LoadMetrics(requests_in_flight=2))
    load_only = Endpoint(id="b", address="x", port=2, capacity=4, load=0.75)
    tracker.record("a")
    assert in_flight(reporting, tracker) == 3
    assert in_flight(load_only, tracker) == 3.0  # 0.75 x 4 workers
    with_latency = Endpoint(id="a", address="x", port=1, capacity=2,
                            metrics=LoadMetrics(latency_ms=40.0))  # fmt: skip
    assert expected_latency_ms(with_latency, tracker) == 60.0  # one pick over two workers


def test_silence_counts_only_unanswered_picks_past_the_grace() -> None:
    silence, tracker = PickTimes(grace=0.1), PickTracker()
    endpoint = Endpoint(id="a", address="x", port=1, reported_at=5.0)
    assert silence.silent_ms(endpoint, tracker, 10.0) == 0.0  # never picked
    silence.picked(endpoint, tracker, 10.0)
    tracker.record("a")
    assert silence.silent_ms(endpoint, tracker, 10.05) == 0.0  # within the grace
    assert silence.silent_ms(endpoint, tracker, 10.3) == pytest.approx(300.0)
    tracker.reset("a")  # it reported: the picks are answered
    newer = Endpoint(id="a", address="x", port=1, reported_at=10.31)
    assert silence.silent_ms(newer, tracker, 10.5) == 0.0
    with pytest.raises(ValueError):
        PickTimes(grace=-1)
