"""Turn :class:`~lookaside.errors.ServiceError` into a gRPC status.

Servicer methods raise domain errors; :func:`abort_with` maps them to the
``grpc.StatusCode`` of the same name, so no servicer builds statuses by hand
and an unexpected exception still becomes ``INTERNAL`` rather than a crash.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from grpc import aio

from lookaside.errors import ServiceError


def status_code(error: ServiceError) -> grpc.StatusCode:
    return grpc.StatusCode[error.status]


async def abort_with(context: aio.ServicerContext[object, object], error: ServiceError) -> NoReturn:
    await context.abort(status_code(error), str(error))
    raise AssertionError("unreachable: abort raises")  # pragma: no cover
