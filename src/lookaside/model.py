"""Plain data the registry keeps and the policies read. No gRPC in here.

``Endpoint`` is immutable: a policy builds its picker from a tuple of them and
never has to lock, because a state change produces new endpoints and a new
picker rather than mutating the old ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

DEFAULT_SERVICE = "compute"


class ServingState(Enum):
    """What a backend says of itself; only SERVING backends are handed out.

    NOT_SERVING (its health check fails) and DRAINING (it is leaving) keep
    their lease and stay listed, but no pick, ``live()`` set or watch sees them.
    """

    SERVING = "serving"
    NOT_SERVING = "not_serving"
    DRAINING = "draining"


@dataclass(frozen=True, slots=True)
class LoadMetrics:
    """ORCA-shaped figures a backend reports (gRFC A51); all optional (0 = unknown)."""

    cpu_utilization: float = 0.0
    application_utilization: float = 0.0
    rps_fractional: float = 0.0
    eps: float = 0.0
    mem_utilization: float = 0.0
    named: Mapping[str, float] = field(default_factory=dict)
    requests_in_flight: int = 0  # calls the backend serves right now (RIF)
    latency_ms: float = 0.0  # recent server-side latency, an EWMA; 0 = unknown


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One live backend as policies see it."""

    id: str
    address: str
    port: int
    service: str = DEFAULT_SERVICE
    capacity: int = 1
    weight: float = 1.0
    load: float = 0.0
    registered_at: float = 0.0  # clock time of its (re)registration
    reported_at: float = 0.0  # clock time of its last load report (0 = never)
    metrics: LoadMetrics = field(default_factory=LoadMetrics)
    serving_state: ServingState = ServingState.SERVING

    @property
    def target(self) -> str:
        """``host:port`` for dialling; IPv6 literals get brackets."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PickRequest:
    """What a client told the LB about the call it is about to make."""

    client_id: str = ""
    hash_key: str = ""
    exclude_ids: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """The request key for hashing policies: ``hash_key``, else ``client_id``."""
        return self.hash_key or self.client_id


@dataclass(frozen=True, slots=True)
class Registration:
    """What a backend asks to be registered as."""

    id: str
    address: str
    port: int
    service: str
    capacity: int = 1
    weight: float = 1.0
    load: float = 0.0
