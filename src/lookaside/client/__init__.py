"""The client side: pick a backend (fast path or ``GetBackend``), then call it directly.

``from lookaside.client import LookasideClient`` keeps working: the names of
:mod:`lookaside.client.lookaside_client` are re-exported here.
"""

from lookaside.client.lookaside_client import (
    BlockingLookasideClient,
    ComputeResult,
    LookasideClient,
    LookasideError,
)

__all__ = ["BlockingLookasideClient", "ComputeResult", "LookasideClient", "LookasideError"]
