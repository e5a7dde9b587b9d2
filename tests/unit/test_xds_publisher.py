"""Publisher: membership at once, weights damped (threshold + minimum gap), versions."""

from __future__ import annotations

from typing import Any

from _pytest.monkeypatch import MonkeyPatch
from envoy.config.endpoint.v3 import endpoint_pb2

from lookaside.lb.outlier import OutlierConfig
from lookaside.lb.xds import resources
from lookaside.lb.xds.config import XdsConfig
from lookaside.lb.xds.weights import WeightEstimator
from tests.unit.xds_fakes import Plane, plane


def localities(p: Plane, service: str = "compute") -> dict[str, int]:
    found = p.publisher.view(resources.LOAD_ASSIGNMENT, [service])[service]
    assignment = endpoint_pb2.ClusterLoadAssignment()
    assert found.body.Unpack(assignment)
    return {loc.locality.sub_zone: loc.load_balancing_weight.value for loc in assignment.endpoints}


def test_unknown_services_do_not_exist_until_a_backend_registers() -> None:
    p = plane()
    assert p.publisher.view(resources.LISTENER, ["compute"]) == {}
    p.join("a", 9001)
    assert set(p.publisher.view(resources.LISTENER, ["compute", "nope"])) == {"compute"}
    assert p.publisher.services() == ["compute"]


def test_configured_services_exist_from_the_start_with_no_endpoints() -> None:
    p = plane("least_load", None, payments="round_robin")
    assert localities(p, "payments") == {}


def test_join_and_leave_are_published_at_once_and_a_leaver_is_removed() -> None:
    p = plane()
    p.join("a", 9001)
    p.join("b", 9002)
    assert localities(p) == {"a": 100, "b": 100}
    version = p.publisher.version(resources.LOAD_ASSIGNMENT)
    p.registry.deregister("a")
    assert localities(p) == {"b": 100}
    assert p.publisher.version(resources.LOAD_ASSIGNMENT) != version
    # The last one leaving keeps the service, with no endpoints.
    p.registry.deregister("b")
    assert localities(p) == {}
    assert set(p.publisher.view(resources.CLUSTER, None)) == {"compute"}


def test_lease_expiry_is_published() -> None:
    p = plane()
    p.join("a", 9001)
    p.join("b", 9002)
    p.clock.now += 3
    p.report("b", rps=10)
    p.clock.now += 3  # a's lease (5 s) is up, b's is not
    p.registry.expire()
    assert localities(p) == {"b": 100}


def test_small_weight_moves_are_not_pushed() -> None:
    p = plane(config=XdsConfig(smoothing=0, threshold=0.1, min_gap=0))
    p.join("a", 9001)
    p.join("b", 9002)
    p.report("a", rps=100)
    p.report("b", rps=100)
    assert localities(p) == {"a": 100, "b": 100}
    versions = p.publisher.version(resources.LOAD_ASSIGNMENT)
    p.clock.now += 1
    p.report("b", rps=90)  # share 0.5 -> 0.47: below the threshold
    assert p.publisher.version(resources.LOAD_ASSIGNMENT) == versions
    p.report("b", rps=50)  # share 0.5 -> 0.33
    assert localities(p) == {"a": 100, "b": 50}


def test_weight_changes_inside_the_gap_wait_for_it_then_go_out_once() -> None:
    p = plane(config=XdsConfig(smoothing=0, threshold=0.05, min_gap=0.5))
    p.join("a", 9001)
    p.join("b", 9002)  # inside the gap since the first join: left to the re-check
    p.clock.now += 1
    assert p.later.run_due() == 1
    p.clock.now += 1
    p.report("a", rps=100)
    p.clock.now += 1
    p.report("b", rps=50)  # pushed: the gap since the join push is over
    assert localities(p) == {"a": 100, "b": 50}
    p.clock.now += 0.1
    p.report("b", rps=40)
    p.report("b", rps=25)
    assert localities(p) == {"a": 100, "b": 50}  # held back
    assert len(p.later.pending) == 1  # one re-check, however many reports
    p.clock.now += 0.3
    assert p.later.run_due() == 0
    p.clock.now += 0.15
    assert p.later.run_due() == 1
    assert localities(p) == {"a": 100, "b": 25}


def test_ejection_is_membership_and_goes_out_at_once() -> None:
    outlier = OutlierConfig(max_ejection_percent=50, base_ejection_time=30)
    p = plane(config=XdsConfig(smoothing=0, min_gap=10), outlier=outlier)
    for n, name in enumerate("abc"):
        p.join(name, 9001 + n)
    p.balancer.record_client_stats("compute", [("a", 100, 100)])
    assert p.balancer.ejected("compute") == {"a"}
    assert set(localities(p)) == {"b", "c"}
    p.clock.now += 31
    p.balancer.sweep()
    assert set(localities(p)) == {"a", "b", "c"}


def test_listener_and_cluster_versions_do_not_move_with_weights() -> None:
    p = plane(config=XdsConfig(smoothing=0, min_gap=0))
    p.join("a", 9001)
    p.join("b", 9002)
    listener, cluster = (p.publisher.version(t) for t in (resources.LISTENER, resources.CLUSTER))
    p.report("a", rps=100)
    p.report("b", rps=10)
    assert localities(p) == {"a": 100, "b": 10}
    assert p.publisher.version(resources.LISTENER) == listener
    assert p.publisher.version(resources.CLUSTER) == cluster


def test_load_reports_inside_the_gap_cost_one_weight_evaluation(monkeypatch: MonkeyPatch) -> None:
    p = plane(config=XdsConfig(smoothing=0, threshold=0.05, min_gap=0.5))
    for n in range(50):
        p.join(f"b{n}", 9001 + n)
    evaluations = counting_evaluations(monkeypatch)
    for n in range(50):  # all inside the gap since the last join's evaluation
        p.report(f"b{n}", rps=10 + n)
    assert evaluations[0] == 0 and len(p.later.pending) == 1
    p.clock.now += 0.5
    assert p.later.run_due() == 1
    assert evaluations[0] == 1
    assert localities(p)["b49"] > localities(p)["b0"]  # the newest figures went out
    p.registry.deregister("b0")  # membership inside the gap: caught up at the next read
    assert evaluations[0] == 1
    assert "b0" not in localities(p) and evaluations[0] == 2


def counting_evaluations(monkeypatch: MonkeyPatch) -> list[int]:
    """A one-item list holding how many times weights were computed from now on."""
    evaluations = [0]
    weights = WeightEstimator.weights

    def counted(self: WeightEstimator, *args: Any) -> dict[str, int]:
        evaluations[0] += 1
        return weights(self, *args)

    monkeypatch.setattr(WeightEstimator, "weights", counted)
    return evaluations


def test_nothing_is_evaluated_for_a_service_no_stream_watches(monkeypatch: MonkeyPatch) -> None:
    p = plane(config=XdsConfig(smoothing=0, threshold=0.05, min_gap=0), watched=False)
    p.join("a", 9001)  # the first sight of a service publishes it (its Listener exists)
    evaluations = counting_evaluations(monkeypatch)
    for n in range(20):
        p.join(f"b{n}", 9002 + n)
        p.report(f"b{n}", rps=10 + n)
    p.registry.deregister("a")
    assert evaluations[0] == 0 and p.later.pending == []
    assert set(p.publisher.view(resources.LISTENER, ["compute"])) == {"compute"}
    # A stream subscribing brings it up to date at once, with what is live now.
    p.publisher.watch(["compute"])
    assert evaluations[0] == 1
    assert set(localities(p)) == {f"b{n}" for n in range(20)}
    p.report("b0", rps=500)
    assert evaluations[0] == 2  # watched: every change is evaluated again (gap 0 here)
    # Its last watcher leaving makes it dormant again; reading its weights wakes it.
    p.publisher.unwatch(["compute"])
    p.join("late", 9100)
    assert evaluations[0] == 2
    assert "late" in p.publisher.weights("compute") and evaluations[0] == 3
