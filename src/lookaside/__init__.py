"""lookaside: a gRPC look-aside load balancer.

The public Python API is what this module exports; everything else is
private to the package and may change. Servers are run with the ``lookaside``
command (``lookaside lb``, ``lookaside backend``, ...).

The exports are imported lazily, so ``import lookaside`` (and ``make proto``,
which must work even when the generated code is missing) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "BackendAgent": "lookaside.backend.agent",
    "BlockingLookasideClient": "lookaside.client.lookaside_client",
    "Channel": "lookaside.client.channel",
    "ClientConfig": "lookaside.client.config",
    "ComputeResult": "lookaside.client.lookaside_client",
    "LookasideClient": "lookaside.client.lookaside_client",
    "LookasideError": "lookaside.client.lookaside_client",
    "TlsConfig": "lookaside.security",
    "SyncChannel": "lookaside.client.sync_channel",
    "Token": "lookaside.security",
    "channel": "lookaside.client.channel",
    "sync_channel": "lookaside.client.sync_channel",
}

__all__ = [
    "BackendAgent",
    "BlockingLookasideClient",
    "Channel",
    "ClientConfig",
    "ComputeResult",
    "LookasideClient",
    "LookasideError",
    "SyncChannel",
    "TlsConfig",
    "Token",
    "__version__",
    "channel",
    "sync_channel",
]

if TYPE_CHECKING:
    from lookaside.backend.agent import BackendAgent
    from lookaside.client.channel import Channel, channel
    from lookaside.client.config import ClientConfig
    from lookaside.client.lookaside_client import (
        BlockingLookasideClient,
        ComputeResult,
        LookasideClient,
        LookasideError,
    )
    from lookaside.client.sync_channel import SyncChannel, sync_channel
    from lookaside.security import TlsConfig, Token


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lookaside' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
