"""The current xDS resources of every service, their versions, and when they change.

The balancer calls :meth:`Publisher.refresh` after every change to a service
(join, leave, load report, ejection, a backend going NOT_SERVING). Membership
changes are published at once; weight-only changes go through the damping of
:mod:`~lookaside.lb.xds.weights` (threshold) plus a minimum gap per service,
with one deferred re-check when a change arrives inside the gap, so clients
see the newest weights at most ``min_gap`` late and never more often.

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
import time
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

    def subscribe(self, watcher: Callable[[str], None]) -> None: ...
    def live(self, service: str) -> tuple[Endpoint, ...]: ...
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
        self._last_push: dict[str, float] = {}
        self._deferred: set[str] = set()
        self._listeners: list[Callable[[], None]] = []
        balancer.subscribe(self.refresh)
        for service in services:
            self.refresh(service)

    # -- what ADS streams read ---------------------------------------------------------

    def version(self, type_url: str) -> str:
        return str(self._versions[type_url])

    def view(self, type_url: str, names: Collection[str] | None) -> dict[str, Resource]:
        """The existing resources among ``names`` (``None``: all of the type)."""
        known = self._resources[type_url]
        if names is None:
            return dict(known)
        return {name: known[name] for name in names if name in known}

    def services(self) -> list[str]:
        return sorted(self._resources[resources.LISTENER])

    def weights(self, service: str) -> dict[str, int]:
        """The weights last pushed for the service (for status pages and tests)."""
        return dict(self._pushed_weights.get(service, {}))

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every publication."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.remove(listener)

    # -- what the balancer drives ------------------------------------------------------

    def refresh(self, service: str) -> None:
        """Recompute the service's resources; publish now, later (inside the gap) or not."""
        endpoints = self._balancer.live(service)
        policy = self._balancer.policy_name(service)
        estimator = self._estimators.get(service)
        if estimator is None:
            estimator = self._estimators[service] = WeightEstimator(self.config)
        now = self._clock()
        weights = estimator.weights(policy, endpoints, now)
        if self._pushed_members.get(service) != _members(endpoints):
            self._publish(service, policy, endpoints, weights, now)
            return
        if not worth_pushing(self._pushed_weights[service], weights, self.config.threshold):
            return
        wait = self._last_push[service] + self.config.min_gap - now
        if wait <= 0:
            self._publish(service, policy, endpoints, weights, now)
        elif service not in self._deferred:
            self._deferred.add(service)
            self._later(wait, lambda: self._deferred_refresh(service))

    def _deferred_refresh(self, service: str) -> None:
        self._deferred.discard(service)
        self.refresh(service)

    def _publish(
        self,
        service: str,
        policy: str,
        endpoints: tuple[Endpoint, ...],
        weights: dict[str, int],
        now: float,
    ) -> None:
        self._pushed_members[service] = _members(endpoints)
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
