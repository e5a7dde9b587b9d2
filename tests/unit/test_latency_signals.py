"""The signals the latency policies read: RIF and latency in reports, silence, on the wire."""

from __future__ import annotations

import pytest

from lookaside import convert
from lookaside.backend.latency import LatencyByRif
from lookaside.errors import InvalidArgument
from lookaside.model import Endpoint, LoadMetrics
from lookaside.policies import PickTracker
from lookaside.policies.signals import (
    PickTimes,
    in_flight,
    queue_factor,
    service_ms,
    typical_service_ms,
)
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
    latency.record(0, 0.340)  # one call caught in a pause
    assert latency.estimate_ms(0) == pytest.approx(190.0)  # median of two: their mean
    latency.record(0, 0.042)
    assert latency.estimate_ms(0) == pytest.approx(42.0)  # a stray sample does not stick
    for _ in range(3):
        latency.record(0, 0.090)  # a lasting change is followed within the window
    assert latency.estimate_ms(0) == pytest.approx(90.0)


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


def test_service_time_is_the_reported_latency_without_its_queue() -> None:
    assert [queue_factor(rif, 2) for rif in (0, 1, 2, 3)] == [1.0, 1.0, 1.5, 2.0]
    idle = Endpoint(id="a", address="x", port=1, capacity=2, metrics=LoadMetrics(latency_ms=40.0))
    queued = Endpoint(id="b", address="x", port=2, capacity=2,
                      metrics=LoadMetrics(requests_in_flight=3, latency_ms=160.0))  # fmt: skip
    unknown = Endpoint(id="c", address="x", port=3, capacity=2)
    assert (service_ms(idle), service_ms(queued), service_ms(unknown)) == (40.0, 80.0, 0.0)
    assert typical_service_ms([idle, queued, unknown]) == 80.0  # the median of the known
    assert typical_service_ms([unknown]) == 0.0


def test_silence_counts_only_unanswered_picks_whose_report_is_overdue() -> None:
    silence, tracker = PickTimes(grace=0.03, report_gap=0.05), PickTracker()
    endpoint = Endpoint(id="a", address="x", port=1, reported_at=5.0)
    assert silence.silent_ms(endpoint, tracker, 10.0) == 0.0  # never picked
    silence.picked(endpoint, tracker, 10.0)
    tracker.record("a")
    assert silence.silent_ms(endpoint, tracker, 10.02) == 0.0  # its report is not late yet
    assert silence.silent_ms(endpoint, tracker, 10.3) == pytest.approx(300.0)
    tracker.reset("a")  # it reported: the picks are answered
    newer = Endpoint(id="a", address="x", port=1, reported_at=10.31)
    assert silence.silent_ms(newer, tracker, 10.5) == 0.0
    # Picked 10 ms after a report: the next report may wait out the 50 ms gap.
    silence.picked(newer, tracker, 10.32)
    tracker.record("a")
    assert silence.silent_ms(newer, tracker, 10.385) == 0.0
    assert silence.silent_ms(newer, tracker, 10.40) == pytest.approx(80.0)
    with pytest.raises(ValueError):
        PickTimes(grace=-1)


def test_picks_in_transit_and_those_made_during_a_silence_count_on_a_report() -> None:
    picks, tracker = PickTimes(grace=0.03, transit=0.02, report_gap=0.05), PickTracker()
    first = Endpoint(id="a", address="x", port=1, reported_at=1.0)
    picks.saw([first])
    for at in (1.001, 1.035, 1.045):
        picks.picked(first, tracker, at)
        tracker.record("a")
    tracker.reset("a")
    on_time = Endpoint(id="a", address="x", port=1, reported_at=1.05)
    picks.saw([on_time])  # the policy sees every report as it rebuilds
    assert picks.in_transit(on_time) == 2  # the two made within 20 ms before it
    assert in_flight(on_time, tracker, picks) == 2
    for at in (1.06, 1.2, 1.3):  # it stops answering after this report
        picks.picked(on_time, tracker, at)
        tracker.record("a")
    tracker.reset("a")
    resumed = Endpoint(id="a", address="x", port=1, reported_at=1.4)
    picks.saw([resumed])
    assert picks.in_transit(resumed) == 3  # none of the picks of its silence is in it
    picks.saw([Endpoint(id="a", address="x", port=1, reported_at=1.45)])
    later = Endpoint(id="a", address="x", port=1, reported_at=1.5)
    picks.saw([later])
    assert picks.in_transit(later) == 0  # those were answered by the report in between


def test_reports_that_always_come_late_here_are_not_silence() -> None:
    """A fast-path client hears reports through the LB's watch, up to 200 ms apart."""
    picks, tracker = PickTimes(grace=0.03, report_gap=0.05), PickTracker()
    reported = 0.0
    for _ in range(10):  # every pick is answered by a report 150 ms later than due
        endpoint = Endpoint(id="a", address="x", port=1, reported_at=reported)
        picks.saw([endpoint])
        picks.picked(endpoint, tracker, reported + 0.001)
        tracker.record("a")
        reported += 0.2
        tracker.reset("a")
    endpoint = Endpoint(id="a", address="x", port=1, reported_at=reported)
    picks.saw([endpoint])
    picks.picked(endpoint, tracker, reported + 0.001)
    tracker.record("a")
    assert picks.silent_ms(endpoint, tracker, reported + 0.2) == 0.0  # as late as usual
    assert picks.silent_ms(endpoint, tracker, reported + 0.4) == pytest.approx(399.0)
