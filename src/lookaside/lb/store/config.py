"""Which store the LB uses, and its tuning; every default lives here (``--store`` reads it)."""

from __future__ import annotations

from dataclasses import dataclass

from lookaside import addresses

MEMORY = "memory"
ETCD_SCHEME = "etcd://"


def etcd_endpoints(url: str, what: str = "--store") -> tuple[addresses.HostPort, ...]:
    """The members of ``etcd://HOST:PORT[,HOST:PORT...]``; ``ValueError`` names ``what``."""
    if not url.startswith(ETCD_SCHEME):
        raise ValueError(f"{what}: {url!r} is neither 'memory' nor etcd://HOST:PORT[,HOST:PORT...]")
    return addresses.lb_addresses(url[len(ETCD_SCHEME) :], what)


@dataclass(frozen=True)
class StoreConfig:
    """Where membership lives. ``memory``: this process only. ``etcd://...``: shared by replicas."""

    url: str = MEMORY
    prefix: str = "/lookaside/"  # every key under it; LB fleets sharing one etcd use their own
    #: Seconds between two batched writes of the loads this replica heard. Other replicas
    #: pick on loads at most about this old; etcd sees replicas / interval such writes a second.
    load_share_interval: float = 0.5
    #: Seconds a write may take, retries included, before it fails as "store unreachable"
    #: (below the 3 s backends give RegisterBackend, so they hear UNAVAILABLE, not a timeout).
    timeout: float = 2.0
    #: Seconds one attempt may take. A request forwarded to a leader that just died hangs
    #: until then, and the next attempt reaches the newly elected one.
    attempt_timeout: float = 0.5
    batch_entries: int = 1000  # loads per etcd value (a put stays far below etcd's 1.5 MiB)

    def __post_init__(self) -> None:
        if self.url != MEMORY:
            etcd_endpoints(self.url)
        if not self.prefix.startswith("/") or not self.prefix.endswith("/"):
            raise ValueError(f"--store-prefix: {self.prefix!r} must start and end with '/'")
        if min(self.load_share_interval, self.timeout, self.attempt_timeout) <= 0:
            raise ValueError("--load-share-interval and the store timeouts must be positive")
        if self.batch_entries < 1:
            raise ValueError("batch_entries must be >= 1")

    @property
    def shared(self) -> bool:
        return self.url != MEMORY

    def etcd_target(self) -> str:
        """The gRPC target for the etcd members (one address, or an ``ipv4:`` list)."""
        return addresses.grpc_target(self.url[len(ETCD_SCHEME) :], "--store")
