"""Keeps one policy and one current picker per service, in step with the registry.

The registry tells the balancer about every change; the balancer rebuilds that
service's picker on joins and leaves, and on load reports when the policy uses
load. ``pick`` then only asks the current picker: no locks, no scans.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping

from lookaside import policies
from lookaside.errors import NoBackendAvailable
from lookaside.model import Endpoint, PickRequest
from lookaside.policies import EmptyPicker, Picker, PickTracker, Policy, Snapshot
from lookaside.policies.base import Clock
from lookaside.registry import Change, Registry

log = logging.getLogger(__name__)


class ServiceBalancer:
    """The policy, pick tracker and current picker of one service."""

    def __init__(self, service: str, policy: Policy) -> None:
        self.service = service
        self.policy = policy
        self.tracker = PickTracker()
        self.picker: Picker = EmptyPicker()

    def rebuild(self, endpoints: tuple[Endpoint, ...], now: float) -> None:
        if not endpoints:
            self.picker = EmptyPicker()
            return
        self.picker = self.policy.build(Snapshot(endpoints, self.tracker, now))


class Balancer:
    """All services' balancers. Subscribe it to a registry with :meth:`attach`."""

    def __init__(
        self,
        registry: Registry,
        default_policy: str,
        service_policies: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._registry = registry
        self._default_policy = default_policy
        self._service_policies = dict(service_policies or {})
        for name in (default_policy, *self._service_policies.values()):
            policies.create(name)  # fail fast on a typo
        self._rng = rng or random.Random()
        self._clock = clock
        self._services: dict[str, ServiceBalancer] = {}
        registry.subscribe(self._on_change)

    def policy_name(self, service: str) -> str:
        return self._service_policies.get(service, self._default_policy)

    def _service(self, service: str) -> ServiceBalancer:
        balancer = self._services.get(service)
        if balancer is None:
            policy = policies.create(self.policy_name(service), self._rng, self._clock)
            balancer = self._services[service] = ServiceBalancer(service, policy)
        return balancer

    def _now(self) -> float:
        return self._clock() if self._clock else 0.0

    def _on_change(self, service: str, backend_id: str, change: Change) -> None:
        balancer = self._service(service)
        if change is Change.LOAD:
            balancer.tracker.reset(backend_id)
            if not balancer.policy.uses_load:
                return
        elif change is Change.LEFT:
            balancer.tracker.forget(backend_id)
        balancer.rebuild(self._registry.endpoints(service), self._now())

    def ejected(self, service: str) -> frozenset[str]:
        """Backends of the service currently ejected as outliers (none yet)."""
        return frozenset()

    def pick(self, service: str, request: PickRequest) -> Endpoint:
        """The policy's choice, or :class:`NoBackendAvailable` naming the service."""
        balancer = self._services.get(service)
        endpoint = balancer.picker.pick(request) if balancer else None
        if endpoint is None:
            if balancer is not None and request.exclude_ids and self._registry.endpoints(service):
                raise NoBackendAvailable(
                    f"every live backend of service {service!r} was excluded by the request"
                )
            raise NoBackendAvailable(f"no live backend for service {service!r}")
        return endpoint
