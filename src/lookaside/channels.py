"""Opening client channels: plaintext or TLS, with reconnect back-off fit for failover.

gRPC's default reconnect back-off grows to two minutes, so a channel to an LB
that was down for a while could take minutes to notice it is back. Every
channel lookaside opens caps the back-off at :data:`MAX_RECONNECT_BACKOFF_MS`,
so backends re-register and clients return to the LB within about a second of
it coming back.

``target`` may list several LB replicas (``a:1,b:2``): see
:mod:`lookaside.addresses` for how one channel fails over between them.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from grpc import aio

from lookaside import addresses

MIN_RECONNECT_BACKOFF_MS = 100
MAX_RECONNECT_BACKOFF_MS = 1000

ChannelOptions = Sequence[tuple[str, int | str]]

RECONNECT_OPTIONS: ChannelOptions = (
    ("grpc.initial_reconnect_backoff_ms", MIN_RECONNECT_BACKOFF_MS),
    ("grpc.min_reconnect_backoff_ms", MIN_RECONNECT_BACKOFF_MS),
    ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
)


def dial(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    options: ChannelOptions = (),
) -> aio.Channel:
    """A channel to ``target`` (one address or several); TLS with ``credentials``."""
    merged: list[tuple[str, int | str]] = [*RECONNECT_OPTIONS, *options]
    if addresses.is_replica_list(target):
        target = addresses.grpc_target(target)
        merged.append(("grpc.service_config", addresses.REPLICAS_SERVICE_CONFIG))
    if credentials is None:
        return aio.insecure_channel(target, options=merged)
    return aio.secure_channel(target, credentials, options=merged)
