"""The exceptions lookaside raises, each tied to the gRPC status it maps to.

The core (registry, policies, validation) imports no gRPC; it raises these and
the servicers translate ``status`` into a ``grpc.StatusCode`` of the same name.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExists",
    "InvalidArgument",
    "LookasideError",
    "NoBackendAvailable",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "Unauthenticated",
]


class LookasideError(Exception):
    """Base class; ``status`` names the gRPC status code the error maps to."""

    status = "UNKNOWN"


class InvalidArgument(LookasideError):
    """A request field is malformed. ``field`` names it."""

    status = "INVALID_ARGUMENT"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(LookasideError):
    """The request names a backend the LB does not know (re-register)."""

    status = "NOT_FOUND"


class AlreadyExists(LookasideError):
    """The id is held by a live backend at another address."""

    status = "ALREADY_EXISTS"


class PermissionDenied(LookasideError):
    """The caller may not act on this backend (it is not the backend itself)."""

    status = "PERMISSION_DENIED"


class ResourceExhausted(LookasideError):
    """A configured limit was reached (backends per service, streams, queue)."""

    status = "RESOURCE_EXHAUSTED"


class Unauthenticated(LookasideError):
    """Missing or wrong credentials."""

    status = "UNAUTHENTICATED"


class NoBackendAvailable(LookasideError):
    """The service has no live backend (or every one was excluded)."""

    status = "UNAVAILABLE"
