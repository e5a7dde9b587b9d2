"""A real registry and balancer on a fake clock, with the xDS publisher attached (no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lookaside.lb.balancer import Balancer
from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.registry import InMemoryRegistry
from lookaside.lb.xds.config import XdsConfig
from lookaside.lb.xds.publisher import Later, Publisher
from lookaside.model import LoadMetrics, Registration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeLater:
    """Records ``later(delay, callback)`` calls; ``run_due`` runs those whose time came."""

    clock: FakeClock
    pending: list[tuple[float, Callable[[], None]]] = field(default_factory=list)

    def __call__(self, delay: float, callback: Callable[[], None]) -> None:
        self.pending.append((self.clock.now + delay, callback))

    def run_due(self) -> int:
        due = [item for item in self.pending if item[0] <= self.clock.now]
        self.pending = [item for item in self.pending if item[0] > self.clock.now]
        for _, callback in due:
            callback()
        return len(due)


@dataclass
class Plane:
    clock: FakeClock
    later: FakeLater
    registry: InMemoryRegistry
    balancer: Balancer
    publisher: Publisher

    def join(
        self, backend_id: str, port: int, weight: float = 1.0, service: str = "compute"
    ) -> None:
        self.registry.register(
            Registration(backend_id, "127.0.0.1", port, service, capacity=4, weight=weight)
        )

    def report(self, backend_id: str, rps: float, load: float = 1.0) -> None:
        metrics = LoadMetrics(rps_fractional=rps, application_utilization=1.0)
        self.registry.report(backend_id, load, metrics)


def plane(
    policy: str = "weighted_round_robin",  # xDS weights = A58 = rps here (utilisation 1)
    config: XdsConfig | None = None,
    outlier: OutlierConfig | None = None,
    watched: bool = True,  # as if an ADS stream subscribed to every assignment
    schedule: Later | None = None,  # the publisher's timer; None: ``Plane.later``
    **services: str,
) -> Plane:
    clock = FakeClock()
    later = FakeLater(clock)
    registry = InMemoryRegistry(ttl=5.0, clock=clock)
    balancer = Balancer(registry, policy, services, clock=clock, outlier=outlier)
    config = config or XdsConfig(smoothing=0)
    publisher = Publisher(balancer, config, clock, schedule or later, services)
    if watched:
        publisher.watch(None)
    return Plane(clock, later, registry, balancer, publisher)
