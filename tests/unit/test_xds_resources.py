"""xDS resources: what gRPC requires of them (gRFCs A27, A28, A42, A52)."""

from __future__ import annotations

from envoy.config.cluster.v3 import cluster_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from lookaside.lb.xds import resources
from lookaside.model import Endpoint


def test_listener_is_an_api_listener_with_inline_routes_and_the_router_last() -> None:
    listener = resources.listener("compute", "least_load")
    assert listener.name == "compute"
    manager = hcm_pb2.HttpConnectionManager()
    assert listener.api_listener.api_listener.Unpack(manager)
    assert manager.http_filters[-1].typed_config.Is(router_pb2.Router.DESCRIPTOR)
    host = manager.route_config.virtual_hosts[0]
    assert list(host.domains) == ["*"]
    assert host.routes[0].match.prefix == ""
    assert host.routes[0].route.cluster == "compute"
    assert not host.routes[0].route.hash_policy


def test_cluster_is_eds_over_ads_with_round_robin() -> None:
    cluster = resources.cluster("compute", "least_load")
    assert cluster.type == cluster_pb2.Cluster.EDS
    assert cluster.eds_cluster_config.eds_config.HasField("ads")
    assert cluster.eds_cluster_config.service_name == "compute"
    assert cluster.lb_policy == cluster_pb2.Cluster.ROUND_ROBIN


def test_ring_hash_hashes_on_the_header() -> None:
    assert resources.cluster("kv", "ring_hash").lb_policy == cluster_pb2.Cluster.RING_HASH
    route = resources.route_configuration("kv", "ring_hash").virtual_hosts[0].routes[0]
    assert route.route.hash_policy[0].header.header_name == resources.HASH_HEADER


def endpoints() -> tuple[Endpoint, ...]:
    return (
        Endpoint("a", "127.0.0.1", 9001),
        Endpoint("b", "127.0.0.1", 9002),
        Endpoint("dup", "127.0.0.1", 9001),  # same address as a
    )


def test_one_weighted_locality_per_backend_in_priority_zero_addresses_unique() -> None:
    assignment = resources.load_assignment("compute", "least_load", endpoints(), {"a": 3, "b": 7})
    assert assignment.cluster_name == "compute"
    localities = list(assignment.endpoints)
    assert [loc.locality.sub_zone for loc in localities] == ["a", "b"]
    assert [loc.load_balancing_weight.value for loc in localities] == [3, 7]
    assert {loc.priority for loc in localities} == {0}
    assert [
        loc.lb_endpoints[0].endpoint.address.socket_address.port_value for loc in localities
    ] == [
        9001,
        9002,
    ]


def test_pick_first_puts_backends_in_successive_priorities() -> None:
    assignment = resources.load_assignment("compute", "pick_first", endpoints()[:2], {})
    assert [loc.priority for loc in assignment.endpoints] == [0, 1]
    assert [loc.load_balancing_weight.value for loc in assignment.endpoints] == [1, 1]
