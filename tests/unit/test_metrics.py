"""LB metrics without sockets: names and labels, counters fed by the registry and
balancer, and label cardinality bounded past the backend limit."""

from __future__ import annotations

import random

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lookaside.lb.admin.metrics import LbMetrics
from lookaside.lb.balancer import Balancer
from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.registry import InMemoryRegistry
from lookaside.model import LoadMetrics, PickRequest, Registration


class Streams:
    open_streams = 3
    open_watches = 2


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def build(
    max_backends: int = 100, max_services: int = 100
) -> tuple[InMemoryRegistry, Balancer, LbMetrics, Clock]:
    clock = Clock()
    registry = InMemoryRegistry(5.0, clock, max_backends)
    balancer = Balancer(
        registry,
        "round_robin",
        rng=random.Random(1),
        clock=clock,
        outlier=OutlierConfig(consecutive_failures=5),
    )
    metrics = LbMetrics(registry, balancer, Streams(), max_services, clock)
    return registry, balancer, metrics, clock


def samples(metrics: LbMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the scrape, parsed back with prometheus_client's own parser."""
    text = generate_latest(metrics.prometheus).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: LbMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, frozenset(labels.items())), 0.0)


def add(registry: InMemoryRegistry, backend_id: str, service: str = "compute") -> None:
    registry.register(Registration(backend_id, "127.0.0.1", 9000 + len(registry), service))


def test_every_name_has_the_prefix_and_counters_end_in_total() -> None:
    registry, balancer, metrics, _ = build()
    add(registry, "a")
    balancer.pick("compute", PickRequest())
    text = generate_latest(metrics.prometheus).decode()
    families = list(text_string_to_metric_families(text))
    assert families
    for family in families:
        assert family.name.startswith("lookaside_"), family.name
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)


def test_picks_registrations_and_reports_are_counted() -> None:
    registry, balancer, metrics, clock = build()
    add(registry, "a")
    add(registry, "b")
    for _ in range(10):
        balancer.pick("compute", PickRequest())
    registry.report("a", 0.5, LoadMetrics())
    clock.now += 2.5
    labels = {"service": "compute", "policy": "round_robin"}
    assert value(metrics, "lookaside_picks_total", backend="a", **labels) == 5
    assert value(metrics, "lookaside_picks_total", backend="b", **labels) == 5
    assert value(metrics, "lookaside_registrations_total", service="compute") == 2
    assert value(metrics, "lookaside_load_reports_total", service="compute") == 1
    assert value(metrics, "lookaside_backends", service="compute", state="serving") == 2
    assert value(metrics, "lookaside_backends", service="compute", state="ejected") == 0
    assert value(metrics, "lookaside_backend_load", service="compute", backend="a") == 0.5
    age = value(metrics, "lookaside_backend_report_age_seconds", service="compute", backend="a")
    assert age == 2.5
    assert value(metrics, "lookaside_load_streams") == 3
    assert value(metrics, "lookaside_watch_subscribers") == 2


def test_departures_by_reason_and_ejections() -> None:
    registry, balancer, metrics, clock = build()
    for name in ("a", "b", "c"):
        add(registry, name)
    balancer.record_client_stats("compute", [("a", 10, 10)])  # 10 failures in a row
    assert value(metrics, "lookaside_ejections_total", service="compute") == 1
    assert value(metrics, "lookaside_backends", service="compute", state="ejected") == 1
    registry.deregister("b")
    metrics.deregistered("compute", "deregister")
    metrics.deregistered("compute", "stream_ended")
    clock.now += 10
    for endpoint in registry.expire():
        metrics.lease_expired(endpoint.service)
    assert value(metrics, "lookaside_deregistrations_total", service="compute", reason="deregister")
    assert value(metrics, "lookaside_lease_expiries_total", service="compute") == 2


def test_departed_backends_take_their_series_with_them() -> None:
    registry, balancer, metrics, _ = build(max_backends=4)
    for generation in range(50):  # 200 distinct backend ids over time, 4 at once
        ids = [f"g{generation}-{n}" for n in range(4)]
        for backend_id in ids:
            add(registry, backend_id)
        balancer.pick("compute", PickRequest())
        for backend_id in ids:
            registry.deregister(backend_id)
    add(registry, "last")
    balancer.pick("compute", PickRequest())
    picks = [key for key in samples(metrics) if key[0] == "lookaside_picks_total"]
    assert len(picks) == 1
    assert len(balancer.picks) == 1


def test_service_labels_stay_bounded_when_services_churn() -> None:
    registry, _, metrics, _ = build(max_services=3)
    for n in range(40):  # 40 services come and go; three are ever tracked
        add(registry, f"b{n}", f"svc{n}")
        registry.deregister(f"b{n}")
    services = {
        dict(labels)["service"]
        for name, labels in samples(metrics)
        if name == "lookaside_registrations_total"
    }
    assert len(services) <= 3
    for n in range(3):  # three live services fill the budget; a fourth goes to _other
        add(registry, f"live{n}", f"live{n}")
    add(registry, "late", "late")
    assert value(metrics, "lookaside_registrations_total", service="_other") == 1
