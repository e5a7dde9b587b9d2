"""Protobuf <-> model translation, with validation on the way in.

Servicers call these so that every field a caller controls is checked in one
place and a bad one becomes ``INVALID_ARGUMENT`` naming the field.
"""

from __future__ import annotations

from lookaside import validation
from lookaside.errors import InvalidArgument
from lookaside.model import Endpoint, LoadMetrics, PickRequest, Registration, ServingState
from lookaside.v1 import load_balancer_pb2 as pb

MAX_EXCLUDE_IDS = 64
MAX_REQUESTS_IN_FLIGHT = 10_000_000

_STATE_FROM_PB: dict[int, ServingState] = {
    pb.SERVING_STATE_UNSPECIFIED: ServingState.SERVING,  # seed-era backends
    pb.SERVING: ServingState.SERVING,
    pb.NOT_SERVING: ServingState.NOT_SERVING,
    pb.DRAINING: ServingState.DRAINING,
}
_STATE_TO_PB = {
    ServingState.SERVING: pb.SERVING,
    ServingState.NOT_SERVING: pb.NOT_SERVING,
    ServingState.DRAINING: pb.DRAINING,
}


def serving_state_from_pb(value: int, field: str = "serving_state") -> ServingState:
    state = _STATE_FROM_PB.get(value)
    if state is None:
        raise InvalidArgument(field, f"{value} is not a ServingState")
    return state


def serving_state_to_pb(state: ServingState) -> pb.ServingState:
    return _STATE_TO_PB[state]


def registration_from_pb(info: pb.BackendInfo) -> Registration:
    return Registration(
        id=validation.backend_id(info.id),
        address=validation.address(info.address),
        port=validation.port(info.port),
        service=validation.service_name(info.service_name),
        capacity=validation.capacity(info.capacity),
        weight=validation.weight(info.weight),
        load=validation.load(info.load),
    )


def report_from_pb(report: pb.LoadReport) -> tuple[str, float, LoadMetrics]:
    """The id, load and ORCA-shaped metrics of a load report, validated."""
    backend_id = validation.backend_id(report.id)
    load = validation.load(report.load)
    metrics = LoadMetrics(
        cpu_utilization=validation.load(report.cpu_utilization, "cpu_utilization"),
        application_utilization=validation.load(
            report.application_utilization, "application_utilization"
        ),
        rps_fractional=validation.load(report.rps_fractional, "rps_fractional"),
        eps=validation.load(report.eps, "eps"),
        mem_utilization=validation.load(report.mem_utilization, "mem_utilization"),
        named=validation.named_metrics(dict(report.named_metrics)),
        requests_in_flight=_requests_in_flight(report.requests_in_flight),
        latency_ms=validation.load(report.latency_ms, "latency_ms"),
    )
    return backend_id, load, metrics


def _requests_in_flight(value: int) -> int:
    if not 0 <= value <= MAX_REQUESTS_IN_FLIGHT:
        raise InvalidArgument(
            "requests_in_flight", f"{value} is outside 0..{MAX_REQUESTS_IN_FLIGHT}"
        )
    return value


def pick_request_from_pb(request: pb.ServerRequest) -> tuple[str, PickRequest]:
    """The service name and the pick request a client sent, validated."""
    service = validation.service_name(request.service_name)
    if len(request.exclude_ids) > MAX_EXCLUDE_IDS:
        raise InvalidArgument(
            "exclude_ids", f"has {len(request.exclude_ids)} entries, the limit is {MAX_EXCLUDE_IDS}"
        )
    return service, PickRequest(
        client_id=validation.client_id(request.client_id),
        hash_key=validation.client_id(request.hash_key, "hash_key"),
        exclude_ids=frozenset(request.exclude_ids),
    )


def endpoint_to_pb(endpoint: Endpoint, ejected: bool = False) -> pb.BackendInfo:
    """The endpoint as the wire sees it, with its latest load report."""
    metrics = endpoint.metrics
    return pb.BackendInfo(
        id=endpoint.id,
        address=endpoint.address,
        port=endpoint.port,
        load=endpoint.load,
        service_name=endpoint.service,
        capacity=endpoint.capacity,
        weight=endpoint.weight,
        ejected=ejected,
        serving_state=serving_state_to_pb(endpoint.serving_state),
        last_report=pb.LoadReport(
            id=endpoint.id,
            load=endpoint.load,
            cpu_utilization=metrics.cpu_utilization,
            application_utilization=metrics.application_utilization,
            rps_fractional=metrics.rps_fractional,
            eps=metrics.eps,
            mem_utilization=metrics.mem_utilization,
            named_metrics=dict(metrics.named),
            requests_in_flight=metrics.requests_in_flight,
            latency_ms=metrics.latency_ms,
            serving_state=serving_state_to_pb(endpoint.serving_state),
        ),
    )


def endpoint_from_pb(info: pb.BackendInfo, registered_at: float, reported_at: float) -> Endpoint:
    """A backend the LB announced (fast path), as the client's own policies see it.

    The LB validated every field when the backend registered and reported.
    """
    report = info.last_report
    return Endpoint(
        id=info.id,
        address=info.address,
        port=info.port,
        service=info.service_name,
        capacity=info.capacity or 1,
        weight=info.weight or 1.0,
        load=info.load,
        registered_at=registered_at,
        reported_at=reported_at,
        metrics=LoadMetrics(
            cpu_utilization=report.cpu_utilization,
            application_utilization=report.application_utilization,
            rps_fractional=report.rps_fractional,
            eps=report.eps,
            mem_utilization=report.mem_utilization,
            named=dict(report.named_metrics),
            requests_in_flight=report.requests_in_flight,
            latency_ms=report.latency_ms,
        ),
    )
