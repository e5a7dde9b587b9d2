"""The LB's Prometheus metrics: names, labels, and how each one is fed.

Names follow the Prometheus rules (``lookaside_`` prefix, base units, ``_total``
for counters). Nothing here sits on the pick path beyond the one dict increment
the balancer already does per pick (:attr:`Balancer.picks`): most figures are
read from the live objects when ``/metrics`` is scraped (a custom collector, as
``prometheus_client`` recommends for state owned elsewhere), and the counters
are plain ints bumped from the registry's and balancer's change callbacks.

Cardinality stays bounded: per-backend series exist only for live backends
(a backend that leaves takes its series with it), and per-service series for at
most ``max_services`` services; past that, services without live backends are
forgotten first, and if every tracked one is live the newcomer is counted under
``service="_other"``.

The xDS server reports through :class:`LbMetrics` as its observer:
``lookaside_xds_streams`` (gauge), ``lookaside_xds_pushes_total{type}`` and
``lookaside_xds_nacks_total{type}``; the store (etcd) through ``on_error``:
``lookaside_store_errors_total{operation}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lookaside.lb.admin.timing import CheapHistogram
from lookaside.lb.balancer import Balancer
from lookaside.lb.registry import Change, Registry
from lookaside.model import Endpoint, ServingState

#: Every state a backend can be shown in; the gauge always has all four (0 when none).
STATES = ("serving", "down", "ejected", "draining")
OTHER = "_other"
#: GetBackend answers in well under a millisecond; buckets from 50 us to 1 s.
GET_BACKEND_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.1,
    1.0,
)


class StreamCounts(Protocol):
    """What the servicer tells about its open streams."""

    @property
    def open_streams(self) -> int: ...
    @property
    def open_watches(self) -> int: ...


def backend_state(endpoint: Endpoint, ejected: frozenset[str]) -> str:
    """The one place that names a backend's state for metrics and the status page."""
    if endpoint.id in ejected:
        return "ejected"
    if endpoint.serving_state is ServingState.DRAINING:
        return "draining"
    if endpoint.serving_state is ServingState.NOT_SERVING:
        return "down"
    return "serving"


class BoundedLabels:
    """Keeps at most ``limit`` service label values; see the module docstring."""

    def __init__(self, limit: int, live: Callable[[], Iterable[str]]) -> None:
        self._limit = max(1, limit)
        self._live = live
        self._known: set[str] = set()
        self.forgotten: list[Callable[[str], None]] = []

    def __call__(self, service: str) -> str:
        if service in self._known:
            return service
        if len(self._known) >= self._limit:
            idle = self._known - set(self._live())
            if not idle:
                return OTHER
            gone = idle.pop()
            self._known.discard(gone)
            for forget in self.forgotten:
                forget(gone)
        self._known.add(service)
        return service


class ServiceCounter:
    """A counter per service (or per service and one more label), as plain ints."""

    def __init__(self, name: str, documentation: str, labels: BoundedLabels, extra: str = ""):
        self.name = name
        self.documentation = documentation
        self._labels = labels
        self._extra = extra
        self.values: dict[tuple[str, str], int] = {}
        labels.forgotten.append(self._forget)

    def inc(self, service: str, extra: str = "") -> None:
        key = (self._labels(service), extra)
        self.values[key] = self.values.get(key, 0) + 1

    def _forget(self, service: str) -> None:
        for key in [key for key in self.values if key[0] == service]:
            del self.values[key]

    def collect(self) -> CounterMetricFamily:
        names = ["service", self._extra] if self._extra else ["service"]
        family = CounterMetricFamily(self.name, self.documentation, labels=names)
        for (service, extra), value in self.values.items():
            family.add_metric([service, extra] if self._extra else [service], value)
        return family


class LbMetrics:
    """Every LB metric, in its own :class:`CollectorRegistry` (one per LB, so tests can
    run several LBs in one process)."""

    def __init__(
        self,
        registry: Registry,
        balancer: Balancer,
        streams: StreamCounts,
        max_services: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._balancer = balancer
        self._streams = streams
        self._clock = clock
        self.prometheus = CollectorRegistry()
        self.services = BoundedLabels(max_services, registry.services)
        self.registrations = ServiceCounter(
            "lookaside_registrations", "Backends that joined a service.", self.services
        )
        self.deregistrations = ServiceCounter(
            "lookaside_deregistrations",
            "Backends that left on their own: Deregister, or their load stream ended.",
            self.services,
            extra="reason",
        )
        self.lease_expiries = ServiceCounter(
            "lookaside_lease_expiries",
            "Backends evicted because they stopped reporting for a whole TTL.",
            self.services,
        )
        self.ejections = ServiceCounter(
            "lookaside_ejections", "Backends ejected as outliers.", self.services
        )
        self.load_reports = ServiceCounter(
            "lookaside_load_reports", "Load reports ingested (unary or streamed).", self.services
        )
        self.watch_pushes = ServiceCounter(
            "lookaside_watch_pushes",
            "Backend sets sent to WatchBackends subscribers.",
            self.services,
        )
        self._counters = (
            self.registrations,
            self.deregistrations,
            self.lease_expiries,
            self.ejections,
            self.load_reports,
            self.watch_pushes,
        )
        self.get_backend_seconds = CheapHistogram(
            "lookaside_get_backend_duration_seconds",
            "Time to answer GetBackend (parse, validate, pick), by status code.",
            "code",
            GET_BACKEND_BUCKETS,
        )
        # Reserved for the xDS server and the etcd store (their code increments these).
        self.xds_streams = Gauge(
            "lookaside_xds_streams", "Open xDS (ADS) streams.", registry=self.prometheus
        )
        self.xds_pushes = Counter(
            "lookaside_xds_pushes",
            "xDS responses sent, by resource type (listener, cluster, endpoint, route).",
            ["type"],
            registry=self.prometheus,
        )
        self.xds_nacks = Counter(
            "lookaside_xds_nacks",
            "xDS responses a client refused (NACK), by resource type.",
            ["type"],
            registry=self.prometheus,
        )
        self.store_errors = Counter(
            "lookaside_store_errors",
            "Failed calls to the shared store (etcd), by operation.",
            ["operation"],
            registry=self.prometheus,
        )
        self._ejected: dict[str, frozenset[str]] = {}
        registry.subscribe(self._on_registry_change)
        balancer.subscribe(self._on_balancer_change)
        self.prometheus.register(_LiveCollector(self))

    # --- fed by callbacks and hooks -----------------------------------------------------

    def _on_registry_change(self, service: str, backend_id: str, change: Change) -> None:
        if change is Change.LOAD:
            self.load_reports.inc(service)
        elif change is Change.JOINED:
            self.registrations.inc(service)

    def _on_balancer_change(self, service: str) -> None:
        """Count ejections as they appear in the balancer's set of ejected backends."""
        now = self._balancer.ejected(service)
        before = self._ejected.get(service, frozenset())
        if now == before:
            return
        for _ in now - before:
            self.ejections.inc(service)
        if now:
            self._ejected[service] = now
        else:
            self._ejected.pop(service, None)

    def deregistered(self, service: str, reason: str) -> None:
        """``reason``: ``deregister`` (the RPC) or ``stream_ended`` (its load stream closed)."""
        self.deregistrations.inc(service, reason)

    def lease_expired(self, service: str) -> None:
        self.lease_expiries.inc(service)

    def watch_pushed(self, service: str) -> None:
        self.watch_pushes.inc(service)

    def store_error(self, operation: str) -> None:
        """The shared store (etcd) did not answer a ``call`` or its ``watch`` broke."""
        self.store_errors.labels(operation).inc()

    # --- the xDS server's observer (lookaside.lb.xds.ads.AdsObserver) -----------------

    def stream_opened(self) -> None:
        self.xds_streams.inc()

    def stream_closed(self) -> None:
        self.xds_streams.dec()

    def pushed(self, type_name: str) -> None:
        self.xds_pushes.labels(type_name).inc()

    def nacked(self, type_name: str) -> None:
        self.xds_nacks.labels(type_name).inc()

    # --- read at scrape time ------------------------------------------------------------

    def collect_live(self) -> Iterator[Metric]:
        picks = CounterMetricFamily(
            "lookaside_picks",
            "Backends handed out (GetBackend), per live backend since it joined.",
            labels=["service", "backend", "policy"],
        )
        backends = GaugeMetricFamily(
            "lookaside_backends",
            "Registered backends per service and state.",
            labels=["service", "state"],
        )
        load = GaugeMetricFamily(
            "lookaside_backend_load",
            "Last load a backend reported (0 = idle, 1 = every worker busy).",
            labels=["service", "backend"],
        )
        age = GaugeMetricFamily(
            "lookaside_backend_report_age_seconds",
            "Seconds since a backend's last load report (or registration).",
            labels=["service", "backend"],
        )
        now = self._clock()
        counts = self._balancer.picks
        per_state: dict[tuple[str, str], int] = {}
        for service in self._registry.services():
            label = self.services(service)
            policy = self._balancer.policy_name(service)
            ejected = self._balancer.ejected(service)
            for state in STATES:
                per_state.setdefault((label, state), 0)
            for endpoint in self._registry.endpoints(service):
                per_state[label, backend_state(endpoint, ejected)] += 1
                picks.add_metric([label, endpoint.id, policy], counts.get(endpoint.id, 0))
                load.add_metric([label, endpoint.id], endpoint.load)
                since = endpoint.reported_at or endpoint.registered_at
                age.add_metric([label, endpoint.id], max(0.0, now - since))
        for (label, state), count in per_state.items():
            backends.add_metric([label, state], count)
        yield picks
        yield backends
        yield load
        yield age
        yield GaugeMetricFamily(
            "lookaside_load_streams",
            "Open StreamLoad calls (one per backend reporting).",
            value=self._streams.open_streams,
        )
        yield GaugeMetricFamily(
            "lookaside_watch_subscribers",
            "Open WatchBackends calls (fast-path clients).",
            value=self._streams.open_watches,
        )
        for counter in self._counters:
            yield counter.collect()
        yield from self.get_backend_seconds.collect()


class _LiveCollector(Collector):
    def __init__(self, metrics: LbMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics.collect_live()
