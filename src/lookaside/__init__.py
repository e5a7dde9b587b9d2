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
    "ComputeResult": "lookaside.client.lookaside_client",
    "LookasideClient": "lookaside.client.lookaside_client",
    "LookasideError": "lookaside.client.lookaside_client",
    "TlsConfig": "lookaside.security",
    "Token": "lookaside.security",
}

__all__ = [
    "BackendAgent",
    "BlockingLookasideClient",
    "ComputeResult",
    "LookasideClient",
    "LookasideError",
    "TlsConfig",
    "Token",
    "__version__",
]

if TYPE_CHECKING:
    from lookaside.backend.agent import BackendAgent
    from lookaside.client.lookaside_client import (
        BlockingLookasideClient,
        ComputeResult,
        LookasideClient,
        LookasideError,
    )
    from lookaside.security import TlsConfig, Token


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lookaside' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
