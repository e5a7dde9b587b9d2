"""The exceptions lookaside raises, each tied to the gRPC status it maps to.

The core (registry, policies, validation) imports no gRPC; it raises these and
the servicers translate ``status`` into a ``grpc.StatusCode`` of the same name.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "InvalidArgument",
    "NoBackendAvailable",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServiceError",
    "Unauthenticated",
    "not_a_load_balancer",
]


class ServiceError(Exception):
    """Base class; ``status`` names the gRPC status code the error maps to."""

    status = "UNKNOWN"


class InvalidArgument(ServiceError):
    """A request field is malformed. ``field`` names it."""

    status = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(ServiceError):
    """The request names a backend the LB does not know (re-register)."""

    status = "NOT_FOUND"


class AlreadyExists(ServiceError):
    """The id is held by a live backend at another address."""

    status = "ALREADY_EXISTS"


class PermissionDenied(ServiceError):
    """The caller may not act on this backend (it is not the backend itself)."""

    status = "PERMISSION_DENIED"


class ResourceExhausted(ServiceError):
    """A configured limit was reached (backends per service, streams, queue)."""

    status = "RESOURCE_EXHAUSTED"


class Unauthenticated(ServiceError):
    """Missing or wrong credentials."""

    status = "UNAUTHENTICATED"


class NoBackendAvailable(ServiceError):
    """The service has no live backend (or every one was excluded)."""

    status = "UNAVAILABLE"


def not_a_load_balancer(target: str) -> str:
    """What to say when ``target`` answers ``UNIMPLEMENTED`` to LB calls (a backend's port?)."""
    return f"{target} serves no lookaside.v1.LoadBalancer (is it a backend?)"
