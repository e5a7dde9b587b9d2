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
