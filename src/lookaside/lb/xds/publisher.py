"""The current xDS resources of every service, their versions, and when they change.

The balancer calls :meth:`Publisher.refresh` after every change to a service
(join, leave, load report, ejection, a backend going NOT_SERVING), naming the
backends that changed. Membership changes are published at once (see Cost
below for bursts); weight-only changes go through the damping of
:mod:`~lookaside.lb.xds.weights` (threshold) plus a minimum gap per service,
with one deferred re-check when a change arrives inside the gap, so clients
see the newest weights at most ``min_gap`` late and never more often.

Cost: an evaluation (weights, members, the assignment) is O(n), so it runs at
most once per ``min_gap`` per service whatever arrives: the first change after a
quiet gap is evaluated at once, later ones wait for one deferred re-check. A
load report therefore costs O(1) here, and a burst of joins one evaluation per
gap. A membership change inside the gap is published at the re-check, or
earlier if the resources are read (an ADS request) before it.

Nobody watching, nothing computed: the endpoints and weights of a service are
evaluated only while some ADS stream subscribes to its ClusterLoadAssignment
(:meth:`Publisher.watch`). An LB whose clients all use ``GetBackend`` (most
fleets) so pays nothing here per report, whatever the fleet's size; a service
that changed while unwatched is marked dormant and evaluated, once, when a
stream subscribes to it or its weights are read.

A service exists for xDS once the LB has seen it (a backend registered) or it
was configured (``--service-policy``). It then keeps its Listener and Cluster
even with no backend left (clients fail fast with "no endpoints" and recover as
soon as one joins) instead of being deleted and re-created. Names the LB has
never seen do not exist (gRFC A27's "resource does not exist").

Versions: every resource has a serial bumped when its bytes change, and every
resource type a version bumped with any of its resources; ADS streams send a
type again only when one of *their* subscribed resources changed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import any_pb2
from google.protobuf.message import Message

from lookaside.lb.xds import resources
from lookaside.lb.xds.config import XdsConfig
from lookaside.lb.xds.weights import WeightEstimator, worth_pushing
from lookaside.model import Endpoint

log = logging.getLogger(__name__)

#: ``later(delay_seconds, callback)``: run ``callback`` once after the delay.
Later = Callable[[float, Callable[[], None]], object]


class BalancerView(Protocol):
    """What the publisher reads from :class:`lookaside.lb.balancer.Balancer`."""

    def subscribe_backends(self, watcher: Callable[[str, Collection[str]], None]) -> None: ...
    def live(self, service: str) -> tuple[Endpoint, ...]: ...
    def live_endpoint(self, service: str, backend_id: str) -> Endpoint | None: ...
    def policy_name(self, service: str) -> str: ...


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    serial: int  # bumped whenever the resource's bytes change
    body: any_pb2.Any


def _call_later(delay: float, callback: Callable[[], None]) -> object:
    return asyncio.get_running_loop().call_later(delay, callback)


def _members(endpoints: tuple[Endpoint, ...]) -> tuple[tuple[str, str, int], ...]:
    return tuple((e.id, e.address, e.port) for e in endpoints)


class Publisher:
    def __init__(
        self,
        balancer: BalancerView,
        config: XdsConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        later: Later = _call_later,
        services: Iterable[str] = (),
    ) -> None:
        self.config = config or XdsConfig()
        self._balancer = balancer
        self._clock = clock
        self._later = later
        self._resources: dict[str, dict[str, Resource]] = {t: {} for t in resources.TYPES}
        self._versions: dict[str, int] = dict.fromkeys(resources.TYPES, 0)
        self._estimators: dict[str, WeightEstimator] = {}
        self._pushed_weights: dict[str, dict[str, int]] = {}
        self._pushed_members: dict[str, tuple[tuple[str, str, int], ...]] = {}
        self._pushed_ids: dict[str, set[str]] = {}
        self._last_push: dict[str, float] = {}
        self._evaluated_at: dict[str, float] = {}  # when the weights were last computed
        self._deferred: set[str] = set()
        self._stale_members: set[str] = set()  # membership changed since the last evaluation
        self._listeners: list[Callable[[], None]] = []
        self._watchers: Counter[str] = Counter()  # ADS streams subscribed to a service's EDS
        self._watching_all = 0  # streams subscribed to every EDS resource (wildcard)
        self._dormant: set[str] = set()  # changed while nobody watched: evaluate on demand
        balancer.subscribe_backends(self.refresh)
        for service in services:
            self.refresh(service)

    # -- what ADS streams read ---------------------------------------------------------

    def version(self, type_url: str) -> str:
        self._catch_up()
        return str(self._versions[type_url])

    def view(self, type_url: str, names: Collection[str] | None) -> dict[str, Resource]:
        """The existing resources among ``names`` (``None``: all of the type)."""
        self._catch_up()
        known = self._resources[type_url]
        if names is None:
            return dict(known)
        return {name: known[name] for name in names if name in known}

    def services(self) -> list[str]:
        self._catch_up()
        return sorted(self._resources[resources.LISTENER])

    def weights(self, service: str) -> dict[str, int]:
        """The weights last pushed for the service (for status pages and tests)."""
        self._catch_up()
        self._wake(service)
        return dict(self._pushed_weights.get(service, {}))

    def watch(self, services: Collection[str] | None) -> None:
        """An ADS stream subscribed to these services' assignments (``None``: to all)."""
        if services is None:
            self._watching_all += 1
            services = tuple(self._dormant)
        else:
            self._watchers.update(services)
        for service in services:
            self._wake(service)

    def unwatch(self, services: Collection[str] | None) -> None:
        """The stream's subscription to these assignments ended (``None``: the wildcard)."""
        if services is None:
            self._watching_all = max(0, self._watching_all - 1)
            return
        self._watchers.subtract(services)
        for service in services:
            if self._watchers[service] <= 0:
                del self._watchers[service]

    def _watched(self, service: str) -> bool:
        return self._watching_all > 0 or service in self._watchers

    def _wake(self, service: str) -> None:
        """Bring a dormant service's resources up to date (it is read or now watched)."""
        if service in self._dormant:
            self._dormant.discard(service)
            self._evaluate(service)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every publication."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.remove(listener)

    # -- what the balancer drives ------------------------------------------------------

    def refresh(self, service: str, backend_ids: Collection[str] | None = None) -> None:
        """The service changed (for ``backend_ids``; None: unknown, check everything).

        The first change after a quiet ``min_gap`` is evaluated at once, O(n). Any
        change inside the gap since the last evaluation costs O(changes): it
        leaves the evaluation to the one deferred re-check (a burst of ten
        thousand joins costs one evaluation per gap, not one per join), except
        that a membership change is caught up before any read of the resources.
        """
        if service in self._pushed_members and not self._watched(service):
            self._dormant.add(service)  # O(1): nobody reads its endpoints until it is watched
            return
        wait = self._evaluated_at.get(service, -math.inf) + self.config.min_gap - self._clock()
        if wait <= 0:
            self._evaluate(service)
            return
        if backend_ids is None or self._membership_changed(service, backend_ids):
            self._stale_members.add(service)
        self._defer(service, wait)

    def _catch_up(self) -> None:
        """Evaluate the services whose membership changed inside the gap (before a read)."""
        while self._stale_members:
            self._evaluate(next(iter(self._stale_members)))

    def _membership_changed(self, service: str, backend_ids: Collection[str]) -> bool:
        pushed = self._pushed_ids.get(service)
        if pushed is None:
            return True
        live = self._balancer.live_endpoint
        return any(
            (backend_id in pushed) != (live(service, backend_id) is not None)
            for backend_id in backend_ids
        )

    def _defer(self, service: str, wait: float) -> None:
        if service not in self._deferred:
            self._deferred.add(service)
            self._later(wait, lambda: self._deferred_refresh(service))

    def _evaluate(self, service: str) -> None:
        """Recompute the service's resources, O(n); publish now, later (inside the gap) or not."""
        endpoints = self._balancer.live(service)
        policy = self._balancer.policy_name(service)
        estimator = self._estimators.get(service)
        if estimator is None:
            estimator = self._estimators[service] = WeightEstimator(self.config)
        now = self._clock()
        self._evaluated_at[service] = now
        self._stale_members.discard(service)
        weights = estimator.weights(policy, endpoints, now)
        if self._pushed_members.get(service) != _members(endpoints):
            self._publish(service, policy, endpoints, weights, now)
            return
        if not worth_pushing(self._pushed_weights[service], weights, self.config.threshold):
            return
        wait = self._last_push[service] + self.config.min_gap - now
        if wait <= 0:
            self._publish(service, policy, endpoints, weights, now)
        else:
            self._defer(service, wait)

    def _deferred_refresh(self, service: str) -> None:
        self._deferred.discard(service)
        self._evaluate(service)

    def _publish(
        self,
        service: str,
        policy: str,
        endpoints: tuple[Endpoint, ...],
        weights: dict[str, int],
        now: float,
    ) -> None:
        self._pushed_members[service] = _members(endpoints)
        self._pushed_ids[service] = {e.id for e in endpoints}
        self._pushed_weights[service] = weights
        self._last_push[service] = now
        built = (
            (resources.LISTENER, resources.listener(service, policy)),
            (resources.ROUTE_CONFIGURATION, resources.route_configuration(service, policy)),
            (resources.CLUSTER, resources.cluster(service, policy, self.config.load_reporting)),
            (
                resources.LOAD_ASSIGNMENT,
                resources.load_assignment(service, policy, endpoints, weights),
            ),
        )
        changed = [t for t, message in built if self._store(t, service, message)]
        if not changed:
            return
        log.debug(
            "xds publish service=%s backends=%d weights=%s",
            service,
            len(endpoints),
            ",".join(f"{k}:{v}" for k, v in weights.items()),
        )
        for listener in list(self._listeners):
            listener()

    def _store(self, type_url: str, name: str, message: Message) -> bool:
        body = resources.packed(message)
        old = self._resources[type_url].get(name)
        if old is not None and old.body.value == body.value:
            return False
        self._versions[type_url] += 1
        self._resources[type_url][name] = Resource(name, (old.serial + 1) if old else 1, body)
        return True
