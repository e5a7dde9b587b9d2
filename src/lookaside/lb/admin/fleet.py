"""What the status page shows: every service and backend, sampled once a second.

The sampler keeps, per live backend, the last :data:`HISTORY` load readings
(the page's sparkline) and its picks per second (the difference of the
balancer's pick count between two samples). Only live backends have a history,
so memory is bounded by the registry's own limits; a backend that leaves takes
its history with it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lookaside.lb.admin.metrics import STATES, backend_state
from lookaside.lb.balancer import Balancer
from lookaside.lb.registry import Registry

HISTORY = 60  # samples kept per backend: one minute at one sample a second


@dataclass(slots=True)
class _Trace:
    loads: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    picks: int = 0
    sampled_at: float = 0.0
    picks_per_second: float = 0.0


class FleetView:
    """Samples the registry and balancer; :meth:`snapshot` is the page's JSON."""

    def __init__(
        self,
        registry: Registry,
        balancer: Balancer,
        clock: Callable[[], float] = time.monotonic,
        describe_lb: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self._registry = registry
        self._balancer = balancer
        self._clock = clock
        self._describe_lb = describe_lb
        self._traces: dict[str, _Trace] = {}
        self.version = 0

    def sample(self) -> None:
        """Take one reading of every live backend (call about once a second)."""
        now = self._clock()
        live: set[str] = set()
        picks = self._balancer.picks
        for service in self._registry.services():
            for endpoint in self._registry.endpoints(service):
                live.add(endpoint.id)
                trace = self._traces.get(endpoint.id)
                count = picks.get(endpoint.id, 0)
                if trace is None:
                    trace = self._traces[endpoint.id] = _Trace(picks=count, sampled_at=now)
                elif now > trace.sampled_at:
                    trace.picks_per_second = max(0, count - trace.picks) / (now - trace.sampled_at)
                    trace.picks, trace.sampled_at = count, now
                trace.loads.append(round(endpoint.load, 4))
        for gone in self._traces.keys() - live:
            del self._traces[gone]
        self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """Every service with its policy and backends, as plain JSON-ready data."""
        now = self._clock()
        services = []
        totals = dict.fromkeys(STATES, 0)
        picks_per_second = 0.0
        for service in sorted(self._registry.services()):
            ejected = self._balancer.ejected(service)
            backends = []
            for endpoint in self._registry.endpoints(service):
                state = backend_state(endpoint, ejected)
                totals[state] += 1
                trace = self._traces.get(endpoint.id)
                rate = trace.picks_per_second if trace else 0.0
                picks_per_second += rate
                since = endpoint.reported_at or endpoint.registered_at
                backends.append(
                    {
                        "id": endpoint.id,
                        "address": endpoint.target,
                        "state": state,
                        "load": round(endpoint.load, 4),
                        "capacity": endpoint.capacity,
                        "weight": endpoint.weight,
                        "picks": self._balancer.picks.get(endpoint.id, 0),
                        "picks_per_second": round(rate, 2),
                        "report_age_seconds": round(max(0.0, now - since), 2),
                        "load_history": list(trace.loads) if trace else [],
                    }
                )
            services.append(
                {
                    "name": service,
                    "policy": self._balancer.policy_name(service),
                    "backends": backends,
                }
            )
        return {
            "lb": self._describe_lb(),
            "totals": {
                "services": len(services),
                "backends": sum(totals.values()),
                "picks_per_second": round(picks_per_second, 2),
                **totals,
            },
            "services": services,
        }
