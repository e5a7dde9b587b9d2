"""What ``lookaside status`` shows: every service and backend, read from the LB's RPCs.

``ListServices`` names the services (with their policies), then ``ListBackends``
lists each one's backends with state, load, report age and picks. An LB that
predates ``ListServices`` answers ``UNIMPLEMENTED``; then only the asked-for
service (default ``compute``) is listed.

Errors come back as :class:`StatusError` with one line a person can act on:
the LB is unreachable, the address serves no LoadBalancer, a token is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import grpc
from grpc import aio

from lookaside.channels import dial
from lookaside.errors import not_a_load_balancer
from lookaside.model import DEFAULT_SERVICE
from lookaside.security import TlsConfig, Token, bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class StatusError(Exception):
    """The LB could not be asked; the message is the one line to print."""


@dataclass(frozen=True, slots=True)
class BackendStatus:
    id: str
    address: str
    state: str  # serving, down, ejected or draining
    load: float
    picks: int
    report_age_seconds: float
    capacity: int
    weight: float


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    policy: str
    backends: tuple[BackendStatus, ...]

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def state_of(info: pb.BackendInfo) -> str:
    if info.ejected:
        return "ejected"
    if info.serving_state == pb.DRAINING:
        return "draining"
    if info.serving_state == pb.NOT_SERVING:
        return "down"
    return "serving"


def _backend(info: pb.BackendInfo) -> BackendStatus:
    host = f"[{info.address}]" if ":" in info.address else info.address
    return BackendStatus(
        id=info.id,
        address=f"{host}:{info.port}",
        state=state_of(info),
        load=info.load,
        picks=info.picks,
        report_age_seconds=round(info.report_age_seconds, 3),
        capacity=info.capacity or 1,
        weight=info.weight or 1.0,
    )


def describe_lb_error(error: aio.AioRpcError, lb_target: str, timeout: float) -> StatusError:
    """One line for a failed call to the LB: unreachable, not an LB, or refused."""
    code = error.code()
    details = error.details() or ""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return StatusError(f"cannot reach the LB at {lb_target}: no answer within {timeout:g}s")
    if code in UNREACHABLE:
        reason = "connection refused" if "refused" in details.lower() else details or code.name
        return StatusError(f"cannot reach the LB at {lb_target}: {reason}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return StatusError(not_a_load_balancer(lb_target))
    return StatusError(f"the LB at {lb_target} refused: {code.name}: {error.details()}")


async def fetch_status(
    lb_target: str,
    service: str | None = None,
    *,
    timeout: float = 3.0,
    token: Token | None = None,
    tls: TlsConfig | None = None,
) -> list[ServiceStatus]:
    """Every service (or just ``service``) with its backends, in name order."""
    metadata = bearer_metadata(token)
    credentials = tls.channel_credentials() if tls is not None else None
    async with dial(lb_target, credentials) as channel:
        stub = pb_grpc.LoadBalancerStub(channel)
        try:
            if service is not None:
                names = [service]
            else:
                try:
                    listed = await stub.ListServices(
                        pb.ListServicesRequest(), timeout=timeout, metadata=metadata
                    )
                    names = [s.name for s in listed.services]
                except aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    names = [DEFAULT_SERVICE]  # an LB from before ListServices
            result = []
            for name in names:
                reply = await stub.ListBackends(
                    pb.ListBackendsRequest(service_name=name), timeout=timeout, metadata=metadata
                )
                backends = tuple(_backend(info) for info in reply.backends)
                result.append(ServiceStatus(name, reply.policy, backends))
            return result
        except aio.AioRpcError as error:
            raise describe_lb_error(error, lb_target, timeout) from None
