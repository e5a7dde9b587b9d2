"""The four xDS resources a gRPC client needs for one service, from the LB's live view.

Every resource of a service is named after the service, so ``xds:///compute``
reads Listener ``compute`` -> (inline) RouteConfiguration ``compute`` ->
Cluster ``compute`` -> ClusterLoadAssignment ``compute``. What gRPC accepts is
set by gRFC A27 (the resources and their required fields), A28 (routing: the
HttpConnectionManager's last filter must be the router) and A42 (ring hash).

Endpoints: one locality per backend (``sub_zone`` = backend id), each with its
integer ``load_balancing_weight``, all in priority 0 — locality weights are
what stock clients honour (A52 ``wrr_locality``). ``pick_first`` instead puts
each backend in its own priority in registration order, so clients use the
first and fail over to the next (A27's priority policy).
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, wrappers_pb2
from google.protobuf.message import Message

from lookaside.model import Endpoint

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_CONFIGURATION = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LOAD_ASSIGNMENT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#: Resource types in the order a client needs them.
TYPES = (LISTENER, ROUTE_CONFIGURATION, CLUSTER, LOAD_ASSIGNMENT)
#: Types where a state-of-the-world response lists every subscribed resource that
#: exists, so an absent one means "does not exist" (A27); the others are sent as known.
FULL_STATE_TYPES = frozenset({LISTENER, CLUSTER})

#: Request header whose value a ``ring_hash`` service hashes (A42); without it the
#: client hashes at random, which spreads calls by weight.
HASH_HEADER = "lookaside-hash-key"
#: Locality region and zone of every backend; the sub-zone is the backend id.
REGION = "lookaside"
ZONE = "lookaside"

_ROUTER_FILTER = "envoy.filters.http.router"


def packed(message: Message) -> any_pb2.Any:
    """A resource wrapped in ``Any``, as DiscoveryResponse and typed configs carry it."""
    result = any_pb2.Any()
    result.Pack(message)
    return result


def route_configuration(service: str, policy: str) -> route_pb2.RouteConfiguration:
    """Every call to the service goes to its cluster (ring_hash: hashed on HASH_HEADER)."""
    action = route_components_pb2.RouteAction(cluster=service)
    if policy == "ring_hash":
        action.hash_policy.append(
            route_components_pb2.RouteAction.HashPolicy(
                header=route_components_pb2.RouteAction.HashPolicy.Header(header_name=HASH_HEADER)
            )
        )
    route = route_components_pb2.Route(
        match=route_components_pb2.RouteMatch(prefix=""), route=action
    )
    host = route_components_pb2.VirtualHost(name=service, domains=["*"], routes=[route])
    return route_pb2.RouteConfiguration(name=service, virtual_hosts=[host])


def listener(service: str, policy: str) -> listener_pb2.Listener:
    """An API listener whose HttpConnectionManager carries the routes inline, router last."""
    manager = hcm_pb2.HttpConnectionManager(
        route_config=route_configuration(service, policy),
        http_filters=[
            hcm_pb2.HttpFilter(name=_ROUTER_FILTER, typed_config=packed(router_pb2.Router()))
        ],
    )
    return listener_pb2.Listener(
        name=service,
        api_listener=api_listener_pb2.ApiListener(api_listener=packed(manager)),
    )


def cluster(service: str, policy: str, load_reporting: bool = False) -> cluster_pb2.Cluster:
    """An EDS cluster fed over the same ADS stream; round robin over weighted localities.

    ``load_reporting``: clients send Load Reporting Service reports to this server.
    """
    result = cluster_pb2.Cluster(
        name=service,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
            eds_config=config_source_pb2.ConfigSource(
                ads=config_source_pb2.AggregatedConfigSource()
            ),
            service_name=service,
        ),
        lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
    )
    if policy == "ring_hash":
        result.lb_policy = cluster_pb2.Cluster.RING_HASH
    if load_reporting:
        result.lrs_server.self.SetInParent()
    return result


def _lb_endpoint(endpoint: Endpoint) -> endpoint_components_pb2.LbEndpoint:
    socket = address_pb2.SocketAddress(address=endpoint.address, port_value=endpoint.port)
    return endpoint_components_pb2.LbEndpoint(
        endpoint=endpoint_components_pb2.Endpoint(
            address=address_pb2.Address(socket_address=socket)
        ),
        health_status=health_check_pb2.HEALTHY,
    )


def load_assignment(
    service: str, policy: str, endpoints: tuple[Endpoint, ...], weights: Mapping[str, int]
) -> endpoint_pb2.ClusterLoadAssignment:
    """One weighted locality per backend; a backend listed twice (same address) appears once."""
    result = endpoint_pb2.ClusterLoadAssignment(cluster_name=service)
    seen: set[tuple[str, int]] = set()
    for endpoint in endpoints:
        if (endpoint.address, endpoint.port) in seen:
            continue  # gRPC rejects an address that repeats
        seen.add((endpoint.address, endpoint.port))
        result.endpoints.append(
            endpoint_components_pb2.LocalityLbEndpoints(
                locality=base_pb2.Locality(region=REGION, zone=ZONE, sub_zone=endpoint.id),
                lb_endpoints=[_lb_endpoint(endpoint)],
                load_balancing_weight=wrappers_pb2.UInt32Value(value=weights.get(endpoint.id, 1)),
                priority=len(seen) - 1 if policy == "pick_first" else 0,
            )
        )
    return result


_MESSAGES: dict[str, type[Message]] = {
    LISTENER: listener_pb2.Listener,
    ROUTE_CONFIGURATION: route_pb2.RouteConfiguration,
    CLUSTER: cluster_pb2.Cluster,
    LOAD_ASSIGNMENT: endpoint_pb2.ClusterLoadAssignment,
}


def unpack(body: any_pb2.Any) -> Message:
    """The resource inside a DiscoveryResponse's ``Any`` (for tools and tests)."""
    type_url = body.type_url
    message = _MESSAGES[type_url]()
    body.Unpack(message)
    return message


def name_of(body: any_pb2.Any) -> str:
    """The name a resource inside ``Any`` is subscribed by."""
    message = unpack(body)
    return str(getattr(message, "cluster_name" if body.type_url == LOAD_ASSIGNMENT else "name"))
