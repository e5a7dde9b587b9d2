"""Keeps one policy and one current picker per service, in step with the registry.

The registry tells the balancer about every change. Joins and leaves rebuild
that service's picker from a snapshot, O(n), once per burst (at the next
pick). A load report costs O(1) here plus
what the policy's :meth:`~lookaside.policies.Policy.update` costs (O(1) or
O(log n) for the built-in load-aware policies): the balancer keeps its own
ordered copy of each service's live endpoints, so a report never copies the
membership. ``pick`` then only asks the current picker: no locks, no scans.

Outlier ejection sits here too: backends that clients report failing (see
:mod:`lookaside.lb.outlier`) are left out of the snapshot the policy sees until
their ejection time is up, so no policy needs to know about it.

Watchers (the fast path's hub) hear which backends of a service changed in what
the service offers: joined, reported, left, ejected or returned.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from lookaside import policies
from lookaside.errors import NoBackendAvailable, NotFound
from lookaside.lb.outlier import OutlierConfig, OutlierDetector
from lookaside.lb.registry import Change, Registry
from lookaside.model import Endpoint, PickRequest, ServingState
from lookaside.policies import EmptyPicker, Picker, PickTracker, Policy, Snapshot
from lookaside.policies.base import Clock

log = logging.getLogger(__name__)

#: Per policy name, the keyword options its constructor takes (see ``policies.create``).
PolicyOptions = Mapping[str, Mapping[str, Any]]
#: Called with (service, ids of the backends whose offer changed) after every change.
BackendsWatcher = Callable[[str, Collection[str]], None]


class ServiceBalancer:
    """The policy, pick tracker, live endpoints and current picker of one service.

    Joins and leaves update the live set at once, O(1), and mark the picker
    stale; it is rebuilt, O(n), at the next pick or report. A burst of a
    thousand registrations therefore costs one rebuild, not a thousand.
    """

    def __init__(self, service: str, policy: Policy) -> None:
        self.service = service
        self.policy = policy
        self.tracker = PickTracker()
        self.picker: Picker = EmptyPicker()
        #: Live, non-ejected endpoints by id, in registration order.
        self.live: dict[str, Endpoint] = {}
        self._stale = False

    def snapshot(self, now: float) -> Snapshot:
        return Snapshot(tuple(self.live.values()), self.tracker, now)

    def rebuild(self, endpoints: tuple[Endpoint, ...], now: float) -> None:
        self.live = {e.id: e for e in endpoints}
        self._build(now)

    def _build(self, now: float) -> None:
        self._stale = False
        if not self.live:
            self.picker = EmptyPicker()
            return
        self.picker = self.policy.build(self.snapshot(now))

    def joined(self, endpoint: Endpoint) -> None:
        self.live[endpoint.id] = endpoint  # registration order: newcomers come last
        self._stale = True

    def left(self, backend_id: str) -> None:
        if self.live.pop(backend_id, None) is not None:
            self._stale = True

    def current(self, now: float) -> Picker:
        """The picker for the live set as it is now (rebuilt first if membership changed)."""
        if self._stale:
            self._build(now)
        return self.picker

    def reported(self, endpoint: Endpoint, now: float) -> None:
        """A member's new report: O(1) plus the policy's incremental update.

        While membership is stale the report only lands in ``live``: the rebuild
        at the next pick reads it, so a burst of joins, each followed by its
        first report, still costs one rebuild and not one per backend.
        """
        self.live[endpoint.id] = endpoint
        if not self._stale and self.policy.uses_load:
            self.picker = self.policy.update(self.picker, endpoint, lambda: self.snapshot(now))


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
        self._backend_watchers: list[BackendsWatcher] = []
        #: Picks handed out per backend id since it joined (metrics, status page, ListBackends).
        self.picks: defaultdict[str, int] = defaultdict(int)
        self._started = self._now()
        registry.subscribe(self._on_change)

    def subscribe(self, watcher: Callable[[str], None]) -> None:
        """Call ``watcher(service)`` after any change to what a service offers."""
        self._watchers.append(watcher)

    def subscribe_backends(self, watcher: BackendsWatcher) -> None:
        """Call ``watcher(service, ids)`` with the backends whose offer changed."""
        self._backend_watchers.append(watcher)

    def _notify(self, service: str, backend_ids: Collection[str]) -> None:
        for watcher in self._watchers:
            watcher(service)
        for backends_watcher in self._backend_watchers:
            backends_watcher(service, backend_ids)

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

    def _rebuild(self, service: str) -> set[str]:
        """Rebuild from the registry, O(n); the ids that joined or left what is offered."""
        balancer = self._service(service)
        before = balancer.live.keys()
        endpoints = self._live(service)
        changed = before ^ {e.id for e in endpoints}
        balancer.rebuild(endpoints, self._now())
        return changed

    def _on_change(self, service: str, backend_id: str, change: Change) -> None:
        balancer = self._service(service)
        if change is Change.LOAD:
            balancer.tracker.reset(backend_id)
            endpoint = self._registry.get(backend_id)
            if endpoint is None or backend_id not in balancer.live:
                return  # ejected, not serving (or gone already): nothing offered has changed
            balancer.reported(endpoint, self._now())
        elif change is Change.STATE:  # in or out of what is offered: a membership change
            balancer.tracker.reset(backend_id)
            self._notify(service, self._rebuild(service) | {backend_id})
            return
        elif change is Change.JOINED:
            self._outliers.add(service, backend_id)
            endpoint = self._registry.get(backend_id)
            if endpoint is not None and endpoint.serving_state is ServingState.SERVING:
                balancer.joined(endpoint)
        elif change is Change.LEFT:
            balancer.tracker.forget(backend_id)
            self.picks.pop(backend_id, None)
            self._outliers.forget(service, backend_id)
            balancer.left(backend_id)
        self._notify(service, (backend_id,))

    def live(self, service: str) -> tuple[Endpoint, ...]:
        """What the policy sees: SERVING backends minus ejected outliers, in registration order."""
        balancer = self._services.get(service)
        return tuple(balancer.live.values()) if balancer else ()

    def live_endpoint(self, service: str, backend_id: str) -> Endpoint | None:
        """One backend as offered now, or None when it is not (gone, ejected, not serving)."""
        balancer = self._services.get(service)
        return balancer.live.get(backend_id) if balancer else None

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
            self._notify(service, self._rebuild(service))

    def sweep(self) -> None:
        """Return ejected backends whose time is up and judge success rates (call ~1/s)."""
        for service in {event.service for event in self._outliers.sweep()}:
            self._notify(service, self._rebuild(service))

    def pick(self, service: str, request: PickRequest) -> Endpoint:
        """The policy's choice, or :class:`NoBackendAvailable` naming the service.

        :class:`NotFound` when no backend registered for the service since the LB
        started, once the LB has been up a whole lease TTL: by then every live
        backend has registered again (after an LB restart, say), so the name is a
        typo, not an outage, and retrying will not help.
        """
        balancer = self._services.get(service)
        if balancer is None and self._now() - self._started >= self._registry.ttl:
            raise NotFound(
                f"service {service!r} is unknown to this LB: no backend registered for it"
            )
        endpoint = balancer.current(self._now()).pick(request) if balancer else None
        if endpoint is None:
            if balancer is not None and request.exclude_ids and balancer.live:
                raise NoBackendAvailable(
                    f"every live backend of service {service!r} was excluded by the request"
                )
            raise NoBackendAvailable(f"no live backend for service {service!r}")
        self.picks[endpoint.id] += 1
        return endpoint
