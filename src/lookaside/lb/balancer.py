"""Keeps one policy and one current picker per service, in step with the registry.

The registry tells the balancer about every change; the balancer rebuilds that
service's picker on joins and leaves, and on load reports when the policy uses
load. ``pick`` then only asks the current picker: no locks, no scans.

Outlier ejection sits here too: backends that clients report failing (see
:mod:`lookaside.lb.outlier`) are left out of the snapshot the policy sees until
their ejection time is up, so no policy needs to know about it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lookaside import policies
from lookaside.errors import NoBackendAvailable
from lookaside.lb.outlier import OutlierConfig, OutlierDetector
from lookaside.lb.registry import Change, Registry
from lookaside.model import Endpoint, PickRequest, ServingState
from lookaside.policies import EmptyPicker, Picker, PickTracker, Policy, Snapshot
from lookaside.policies.base import Clock

log = logging.getLogger(__name__)

#: Per policy name, the keyword options its constructor takes (see ``policies.create``).
PolicyOptions = Mapping[str, Mapping[str, Any]]


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
    """All services' balancers; subscribes itself to the registry."""

    def __init__(
        self,
        registry: Registry,
        default_policy: str,
        service_policies: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        policy_options: PolicyOptions | None = None,
        outlier: OutlierConfig | None = None,
    ) -> None:
        self._registry = registry
        self._default_policy = default_policy
        self._service_policies = dict(service_policies or {})
        self._policy_options = {k: dict(v) for k, v in (policy_options or {}).items()}
        self._rng = rng or random.Random()
        self._clock = clock
        for name in (default_policy, *self._service_policies.values()):
            self._create_policy(name)  # fail fast on a typo or a bad option
        self._services: dict[str, ServiceBalancer] = {}
        self._outliers = OutlierDetector(outlier, clock) if clock else OutlierDetector(outlier)
        self._watchers: list[Callable[[str], None]] = []
        registry.subscribe(self._on_change)

    def subscribe(self, watcher: Callable[[str], None]) -> None:
        """Call ``watcher(service)`` after any change to what a service offers."""
        self._watchers.append(watcher)

    def _notify(self, service: str) -> None:
        for watcher in self._watchers:
            watcher(service)

    def _create_policy(self, name: str) -> Policy:
        options = self._policy_options.get(name, {})
        return policies.create(name, self._rng, self._clock, **options)

    def policy_name(self, service: str) -> str:
        return self._service_policies.get(service, self._default_policy)

    def _service(self, service: str) -> ServiceBalancer:
        balancer = self._services.get(service)
        if balancer is None:
            policy = self._create_policy(self.policy_name(service))
            balancer = self._services[service] = ServiceBalancer(service, policy)
        return balancer

    def _now(self) -> float:
        return self._clock() if self._clock else 0.0

    def _live(self, service: str) -> tuple[Endpoint, ...]:
        """The service's SERVING endpoints minus the ejected outliers."""
        endpoints = self._registry.endpoints(service)
        ejected = self._outliers.ejected(service)
        return tuple(
            e for e in endpoints if e.serving_state is ServingState.SERVING and e.id not in ejected
        )

    def _rebuild(self, service: str) -> None:
        self._service(service).rebuild(self._live(service), self._now())

    def _on_change(self, service: str, backend_id: str, change: Change) -> None:
        balancer = self._service(service)
        self._notify(service)
        if change in (Change.LOAD, Change.STATE):
            balancer.tracker.reset(backend_id)
            if change is Change.LOAD and not balancer.policy.uses_load:
                return
        elif change is Change.JOINED:
            self._outliers.add(service, backend_id)
        elif change is Change.LEFT:
            balancer.tracker.forget(backend_id)
            self._outliers.forget(service, backend_id)
        self._rebuild(service)

    def live(self, service: str) -> tuple[Endpoint, ...]:
        """What the policy sees: SERVING backends minus ejected outliers, in registration order."""
        return self._live(service)

    def ejected(self, service: str) -> frozenset[str]:
        """Backends of the service currently ejected as outliers."""
        return self._outliers.ejected(service)

    def record_client_stats(
        self, service: str, per_backend: Iterable[tuple[str, int, int]]
    ) -> None:
        """Feed one client's (backend id, calls finished, calls failed) counts."""
        changed = False
        for backend_id, finished, failed in per_backend:
            if self._outliers.record(service, backend_id, finished, failed) is not None:
                changed = True
        if changed:
            self._rebuild(service)
            self._notify(service)

    def sweep(self) -> None:
        """Return ejected backends whose time is up and judge success rates (call ~1/s)."""
        for service in {event.service for event in self._outliers.sweep()}:
            self._rebuild(service)
            self._notify(service)

    def pick(self, service: str, request: PickRequest) -> Endpoint:
        """The policy's choice, or :class:`NoBackendAvailable` naming the service."""
        balancer = self._services.get(service)
        endpoint = balancer.picker.pick(request) if balancer else None
        if endpoint is None:
            if balancer is not None and request.exclude_ids and self._live(service):
                raise NoBackendAvailable(
                    f"every live backend of service {service!r} was excluded by the request"
                )
            raise NoBackendAvailable(f"no live backend for service {service!r}")
        return endpoint
