"""ADS state of the world without sockets: subscriptions, versions, nonces, ACK and NACK."""

from __future__ import annotations

import logging

import pytest
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from lookaside.lb.xds import resources
from lookaside.lb.xds.ads import AdsStream
from tests.unit.xds_fakes import Plane, plane

LDS, CDS, EDS = resources.LISTENER, resources.CLUSTER, resources.LOAD_ASSIGNMENT


def request(
    type_url: str,
    names: list[str],
    nonce: str = "",
    version: str = "",
    error: str = "",
) -> discovery_pb2.DiscoveryRequest:
    message = discovery_pb2.DiscoveryRequest(
        type_url=type_url, resource_names=names, response_nonce=nonce, version_info=version
    )
    message.node.id = "test-node"
    if error:
        message.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
    return message


def names(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    return [resources.name_of(body) for body in response.resources]


def started(*services: str) -> tuple[Plane, AdsStream]:
    p = plane()
    for n, service in enumerate(services):
        p.join(f"{service}-1", 9001 + n, service=service)
    return p, AdsStream(p.publisher, "test-peer")


def ack(
    stream: AdsStream, response: discovery_pb2.DiscoveryResponse, subscribed: list[str]
) -> None:
    stream.receive(request(response.type_url, subscribed, response.nonce, response.version_info))


def test_a_subscription_is_answered_with_the_resource_and_an_ack_with_nothing() -> None:
    _, stream = started("compute")
    stream.receive(request(LDS, ["compute"]))
    (response,) = stream.responses()
    assert response.type_url == LDS
    assert names(response) == ["compute"]
    assert response.nonce and response.version_info
    ack(stream, response, ["compute"])
    assert stream.responses() == []
    assert stream.types[LDS].acked_version == response.version_info
    assert stream.node_id == "test-node"


def test_unknown_names_are_answered_without_them_meaning_does_not_exist() -> None:
    _, stream = started("compute")
    stream.receive(request(LDS, ["nope"]))
    stream.receive(request(EDS, ["nope"]))
    lds, eds = stream.responses()
    assert (lds.type_url, list(lds.resources)) == (LDS, [])
    assert (eds.type_url, list(eds.resources)) == (EDS, [])


def test_only_subscribed_resources_are_sent_and_only_when_they_change() -> None:
    p, stream = started("compute", "payments")
    stream.receive(request(EDS, ["payments"]))
    (first,) = stream.responses()
    assert names(first) == ["payments"]
    ack(stream, first, ["payments"])
    p.join("compute-2", 9100, service="compute")  # another service: nothing for this stream
    assert stream.responses() == []
    p.join("payments-2", 9101, service="payments")
    (second,) = stream.responses()
    assert names(second) == ["payments"]
    assert int(second.version_info) > int(first.version_info)
    assert second.nonce != first.nonce


def test_listener_and_cluster_responses_list_every_subscribed_resource() -> None:
    _, stream = started("compute", "payments")
    stream.receive(request(CDS, ["compute"]))
    ack(stream, stream.responses()[0], ["compute"])
    stream.receive(request(CDS, ["compute", "payments"]))  # adds one: both are sent again
    (response,) = stream.responses()
    assert names(response) == ["compute", "payments"]


def test_a_nack_is_logged_and_the_rejected_version_is_not_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p, stream = started("compute")
    stream.receive(request(EDS, ["compute"]))
    good = stream.responses()[0]
    ack(stream, good, ["compute"])
    p.join("compute-2", 9100)
    bad = stream.responses()[0]
    with caplog.at_level(logging.WARNING):
        stream.receive(request(EDS, ["compute"], bad.nonce, good.version_info, "weight is zero"))
    assert "NACK" in caplog.text and "weight is zero" in caplog.text
    state = stream.types[EDS]
    assert state.acked_version == good.version_info
    assert state.nack == "weight is zero"
    assert stream.responses() == []  # the client keeps its last good version
    p.join("compute-3", 9101)  # a real change: a new version goes out
    (newer,) = stream.responses()
    assert int(newer.version_info) > int(bad.version_info)
    ack(stream, newer, ["compute"])
    assert (state.acked_version, state.nack) == (newer.version_info, "")


def test_a_request_with_a_stale_nonce_is_ignored() -> None:
    p, stream = started("compute")
    stream.receive(request(EDS, ["compute"]))
    first = stream.responses()[0]
    p.join("compute-2", 9100)
    second = stream.responses()[0]
    stream.receive(request(EDS, [], first.nonce, first.version_info))  # answers the old one
    assert stream.types[EDS].names == {"compute"}
    assert stream.types[EDS].acked_version == ""
    ack(stream, second, ["compute"])
    assert stream.types[EDS].acked_version == second.version_info


def test_wildcard_listener_and_cluster_subscriptions() -> None:
    _, stream = started("compute", "payments")
    stream.receive(request(CDS, []))  # empty first request: every cluster
    stream.receive(request(LDS, ["*"]))
    lds, cds = stream.responses()
    assert names(lds) == names(cds) == ["compute", "payments"]
    stream.receive(request(EDS, []))  # not a wildcard type: nothing subscribed
    (eds,) = stream.responses()
    assert list(eds.resources) == []


def test_unsubscribing_everything_after_names_is_not_a_wildcard() -> None:
    _, stream = started("compute")
    stream.receive(request(LDS, ["compute"]))
    response = stream.responses()[0]
    ack(stream, response, [])
    (empty,) = stream.responses()
    assert list(empty.resources) == []


def test_unsupported_types_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    _, stream = started("compute")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            stream.receive(request("type.googleapis.com/envoy.extensions.Secret", ["x"]))
    assert stream.responses() == []
    assert caplog.text.count("not served") == 1  # once per stream, not once per request


def test_pushes_and_nacks_reach_the_lb_metrics_by_type() -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from lookaside.lb.xds.ads import type_name

    class Metrics:  # the LbMetrics counters, on their own registry
        def __init__(self) -> None:
            from prometheus_client import Counter

            self.registry = CollectorRegistry()
            self.pushes = Counter("lookaside_xds_pushes", "", ["type"], registry=self.registry)
            self.nacks = Counter("lookaside_xds_nacks", "", ["type"], registry=self.registry)

        def stream_opened(self) -> None: ...
        def stream_closed(self) -> None: ...
        def pushed(self, type_name: str) -> None:
            self.pushes.labels(type_name).inc()

        def nacked(self, type_name: str) -> None:
            self.nacks.labels(type_name).inc()

    metrics = Metrics()
    p = plane()
    p.join("compute-1", 9001)
    stream = AdsStream(p.publisher, "test-peer", metrics)
    stream.receive(request(EDS, ["compute"]))
    stream.receive(request(LDS, ["compute"]))
    first = stream.responses()
    assert sorted(type_name(r.type_url) for r in first) == ["endpoint", "listener"]
    eds = next(r for r in first if r.type_url == EDS)
    stream.receive(request(EDS, ["compute"], eds.nonce, "", "refused"))
    samples = {
        (s.name, s.labels.get("type")): s.value
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert samples[("lookaside_xds_pushes_total", "endpoint")] == 1
    assert samples[("lookaside_xds_pushes_total", "listener")] == 1
    assert samples[("lookaside_xds_nacks_total", "endpoint")] == 1


def test_a_stream_watches_the_assignments_it_subscribes_to_until_it_closes() -> None:
    p = plane(watched=False)
    p.join("compute-1", 9001)
    stream = AdsStream(p.publisher, "test-peer")
    p.join("compute-2", 9002)  # nobody watches: left dormant
    stream.receive(request(EDS, ["compute"]))
    (response,) = stream.responses()
    assignment = resources.unpack(response.resources[0])
    assert len(assignment.endpoints) == 2  # woken by the subscription, with both
    stream.receive(request(EDS, ["compute", "other"], response.nonce, response.version_info))
    stream.close()
    stream.close()  # closing twice does not unwatch twice
    p.join("compute-3", 9003)  # unwatched again: not evaluated until someone asks
    stored = resources.unpack(p.publisher.view(EDS, ["compute"])["compute"].body)
    assert len(stored.endpoints) == 2
    assert len(p.publisher.weights("compute")) == 3  # a read wakes it
