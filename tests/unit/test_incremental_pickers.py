"""Load reports patch pickers in place; the result picks as a full rebuild would.

Property-based (hypothesis): random fleets, reports and picks, with every
incremental picker checked against one rebuilt from the same state.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookaside import policies
from lookaside.lb.balancer import Balancer
from lookaside.lb.registry import InMemoryRegistry
from lookaside.model import Endpoint, LoadMetrics, PickRequest, Registration
from lookaside.policies import Picker, PickTracker, Policy, Snapshot
from lookaside.policies.least_load import DEFAULT_TOLERANCE, LeastLoadPicker
from lookaside.policies.p2c import P2CPicker
from lookaside.policies.weighted_round_robin import WeightedRoundRobin, WrrConfig


def fleet(capacities: list[int]) -> list[Endpoint]:
    return [Endpoint(f"b{i}", "127.0.0.1", 9000 + i, capacity=c) for i, c in enumerate(capacities)]


def clone(tracker: PickTracker, endpoints: list[Endpoint]) -> PickTracker:
    copy = PickTracker()
    for e in endpoints:
        for _ in range(tracker.outstanding(e.id)):
            copy.record(e.id)
    return copy


def bucket(load: float) -> int:
    return int(load / DEFAULT_TOLERANCE + 1e-9)


# One step: ("report", backend index, load) or ("pick", excluded indices).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("report"), st.integers(0, 15), st.floats(0, 3, allow_nan=False)),
        st.tuples(st.just("pick"), st.frozensets(st.integers(0, 15), max_size=3)),
    ),
    max_size=60,
)
capacities = st.lists(st.integers(1, 4), min_size=1, max_size=16)


def run(policy: Policy, caps: list[int], ops: list[tuple[object, ...]], check: object) -> None:
    """Drive ``policy`` through ``ops``; call ``check(picker, endpoints, tracker, request)``."""
    endpoints = fleet(caps)
    tracker = PickTracker()
    picker = policy.build(Snapshot(tuple(endpoints), tracker))
    for op in ops:
        if op[0] == "report":
            index = int(op[1]) % len(endpoints)  # type: ignore[call-overload]
            endpoints[index] = replace(endpoints[index], load=float(op[2]))  # type: ignore[arg-type]
            tracker.reset(endpoints[index].id)
            picker = policy.update(
                picker, endpoints[index], lambda: Snapshot(tuple(endpoints), tracker)
            )
        else:
            excluded = frozenset(endpoints[i % len(endpoints)].id for i in op[1])  # type: ignore[attr-defined]
            check(picker, endpoints, tracker, PickRequest(exclude_ids=excluded))  # type: ignore[operator]


@settings(max_examples=150, deadline=None)
@given(capacities, steps, st.integers(0, 2**32))
def test_least_load_updates_match_a_rebuild(caps: list[int], ops: list, seed: int) -> None:  # type: ignore[type-arg]
    policy = policies.create("least_load", random.Random(seed))

    def check(
        picker: Picker, endpoints: list[Endpoint], tracker: PickTracker, request: PickRequest
    ) -> None:
        assert isinstance(picker, LeastLoadPicker)
        rebuilt = LeastLoadPicker(
            tuple(endpoints), clone(tracker, endpoints), random.Random(0), DEFAULT_TOLERANCE
        )
        assert picker.loads() == pytest.approx(rebuilt.loads())  # picks add up in floats
        allowed = {i: load for i, load in picker.loads().items() if i not in request.exclude_ids}
        chosen = picker.pick(request)
        if not allowed:
            assert chosen is None
            return
        assert chosen is not None
        assert bucket(allowed[chosen.id]) == min(bucket(v) for v in allowed.values())
        assert chosen == next(e for e in endpoints if e.id == chosen.id)  # the newest report

    run(policy, caps, ops, check)


@settings(max_examples=150, deadline=None)
@given(capacities, steps, st.integers(0, 2**32))
def test_p2c_updates_pick_exactly_as_a_rebuild(caps: list[int], ops: list, seed: int) -> None:  # type: ignore[type-arg]
    rng = random.Random(seed)
    policy = policies.create("p2c", rng)

    def check(
        picker: Picker, endpoints: list[Endpoint], tracker: PickTracker, request: PickRequest
    ) -> None:
        assert isinstance(picker, P2CPicker)
        twin_rng = random.Random()
        twin_rng.setstate(rng.getstate())
        rebuilt = P2CPicker(tuple(endpoints), clone(tracker, endpoints), twin_rng)
        assert picker.endpoints == tuple(endpoints)
        assert picker.pick(request) == rebuilt.pick(request)

    run(policy, caps, ops, check)


def wrr_report(endpoint: Endpoint, at: float, qps: float, utilization: float) -> Endpoint:
    metrics = LoadMetrics(rps_fractional=qps, cpu_utilization=utilization)
    return replace(endpoint, reported_at=at, metrics=metrics, load=utilization)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.floats(1, 1000), st.floats(0.01, 1)),
        min_size=1,
        max_size=40,
    )
)
def test_wrr_updates_recompute_weights_as_a_rebuild_does(
    reports: list[tuple[int, float, float]],
) -> None:
    """Same reports, same clock: updates (period 0) and rebuilds give the same weights."""
    now = [0.0]
    config = WrrConfig(blackout_period=2.0, weight_update_period=0.0)
    incremental = WeightedRoundRobin(random.Random(1), lambda: now[0], config)
    rebuilding = WeightedRoundRobin(random.Random(1), lambda: now[0], config)
    endpoints = fleet([1] * 5)
    picker = incremental.build(Snapshot(tuple(endpoints)))
    rebuilding.build(Snapshot(tuple(endpoints)))
    for index, qps, utilization in reports:
        now[0] += 0.5
        endpoints[index] = wrr_report(endpoints[index], now[0], qps, utilization)
        picker = incremental.update(picker, endpoints[index], lambda: Snapshot(tuple(endpoints)))
        rebuilding.build(Snapshot(tuple(endpoints)))
        assert incremental.weights == rebuilding.weights


def test_wrr_recomputes_weights_at_most_once_per_period() -> None:
    now = [0.0]
    config = WrrConfig(blackout_period=0.0, weight_update_period=1.0)
    policy = WeightedRoundRobin(random.Random(1), lambda: now[0], config)
    a, b = fleet([1, 1])
    endpoints = [wrr_report(a, 0, 100, 0.5), wrr_report(b, 0, 100, 1.0)]
    picker = policy.build(Snapshot(tuple(endpoints)))
    assert policy.weights == {"b0": 200.0, "b1": 100.0}
    now[0] = 0.5
    endpoints[1] = wrr_report(b, 0.5, 100, 0.25)  # b is now the fastest
    same = policy.update(picker, endpoints[1], lambda: Snapshot(tuple(endpoints)))
    assert same is picker and policy.weights == {"b0": 200.0, "b1": 100.0}
    # The picker already hands out b's newest report, at its old weight.
    assert endpoints[1] in [picker.pick(PickRequest()) for _ in range(6)]
    now[0] = 1.0
    endpoints[0] = wrr_report(a, 1.0, 100, 0.5)
    policy.update(picker, endpoints[0], lambda: Snapshot(tuple(endpoints)))
    assert policy.weights == {"b0": 200.0, "b1": 400.0}


class RebuildOnly(Policy):
    """A load-aware policy that does not override ``update``: the default rebuilds."""

    name = "rebuild_only"
    uses_load = True
    builds = 0

    def build(self, snapshot: Snapshot) -> Picker:
        RebuildOnly.builds += 1
        lowest = min(snapshot.endpoints, key=lambda e: e.load)

        class Lowest(Picker):
            def pick(self, request: PickRequest) -> Endpoint | None:
                return lowest

        return Lowest()


def balancer_with(policy_name: str, registry: InMemoryRegistry) -> Balancer:
    return Balancer(registry, policy_name, rng=random.Random(3))


def register(registry: InMemoryRegistry, count: int) -> None:
    for i in range(count):
        registry.register(Registration(f"b{i}", "127.0.0.1", 9000 + i, "compute"))


@pytest.mark.parametrize("name", ["least_load", "p2c"])
def test_reports_never_rebuild_the_built_in_load_aware_pickers(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = InMemoryRegistry()
    balancer = balancer_with(name, registry)
    register(registry, 50)
    builds: list[int] = []
    cls = policies.POLICIES[name]
    original = cls.build

    def counting_build(self: Policy, snapshot: Snapshot) -> Picker:
        builds.append(1)
        return original(self, snapshot)

    monkeypatch.setattr(cls, "build", counting_build)
    for i in range(50):
        registry.report(f"b{i}", 0.9, LoadMetrics())
    assert builds == []  # joins (each with its first report) build nothing until a pick
    balancer.pick("compute", PickRequest())
    assert builds == [1]  # the 50 joins came in one burst: one build, at the first pick
    builds.clear()
    registry.report("b7", 0.0, LoadMetrics())
    assert builds == []
    picker = balancer._services["compute"].current(0.0)
    if isinstance(picker, P2CPicker):
        assert registry.get("b7") in picker.endpoints
    else:
        assert balancer.pick("compute", PickRequest()).id == "b7"
    registry.deregister("b7")  # membership changes do rebuild, at the next pick
    assert builds == []
    balancer.pick("compute", PickRequest())
    assert builds == [1]


def test_a_policy_without_update_is_rebuilt_on_every_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(policies.POLICIES, "rebuild_only", RebuildOnly)
    registry = InMemoryRegistry()
    balancer = balancer_with("rebuild_only", registry)
    register(registry, 3)
    balancer.pick("compute", PickRequest())
    RebuildOnly.builds = 0
    registry.report("b0", 0.5, LoadMetrics())
    registry.report("b1", 0.5, LoadMetrics())
    registry.report("b2", 0.1, LoadMetrics())
    assert RebuildOnly.builds == 3
    assert balancer.pick("compute", PickRequest()).id == "b2"


def test_balancer_live_view_follows_reports_joins_and_leaves() -> None:
    registry = InMemoryRegistry()
    balancer = balancer_with("round_robin", registry)
    register(registry, 3)
    registry.report("b1", 0.7, LoadMetrics())
    assert [e.id for e in balancer.live("compute")] == ["b0", "b1", "b2"]
    assert balancer.live_endpoint("compute", "b1") == registry.get("b1")
    registry.deregister("b0")
    assert [e.id for e in balancer.live("compute")] == ["b1", "b2"]
    assert balancer.live_endpoint("compute", "b0") is None
