"""The lab's runner: every case on a fresh LB and fresh backends, as real processes.

For each repeat, each server count and each policy: start ``lookaside lb`` with
that policy and N ``lookaside backend`` processes, wait until all are
registered, run the scenario's load, stop everything. Repeats are the outer
loop so that slow drift of the machine spreads over every policy alike.

Scenarios:

* ``seed`` — the seed's experiment: C concurrent clients, each sending its
  requests one after another (closed loop), all starting together.
* ``heterogeneous`` — a fraction of the backends ``slow_factor`` times slower;
  open-loop Poisson arrivals at ``load_factor`` x total capacity for a duration.
* ``churn`` — open-loop load while a backend is SIGKILLed and a new one started
  every ``kill_interval`` seconds.
* ``chaos`` — open-loop load through :class:`~lookaside.client.LookasideClient`
  (failover, retries) while backends *and the LB* are SIGKILLed and restarted.
* ``stalls`` — equal backends under open-loop load; now and then one of them
  stops answering for a few hundred ms (SIGSTOP/SIGCONT, see :mod:`~lookaside.bench.stalls`).
* ``sweep`` — the heterogeneous configuration at every load in ``load_factors``:
  the latency-throughput curve of each policy.
* ``burst`` — the seed's flow with its own defaults: 100 simultaneous requests
  on 10 idle backends, judged by the busiest backend's share (busiest / mean).

Open-loop scenarios draw the same arrival times for every policy of a repeat
(``seed + repeat``), so policies are compared on identical traffic.

``grpc_round_robin`` runs the same backends (they register with an LB, which is
how the lab learns their addresses) but its clients never call the LB: they use
gRPC's own ``round_robin`` over the static address list.

``xds`` runs an LB with ``least_load`` (whose xDS weights follow load) and, in
place of the in-process clients, a stock grpcio client in a child process that
dials ``xds:///SERVICE`` (:mod:`~lookaside.bench.xds_flow`): the same number of
channels, the same closed loop or the same arrival times.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from lookaside.bench.churn import ChurnEvent, churn_figures
from lookaside.bench.fleet import BackendSpec, Fleet, numbered_ids
from lookaside.bench.load import (
    FailoverClient,
    FlowClient,
    GrpcRoundRobinClient,
    OnRecord,
    SeedFlowClient,
    WarmConnections,
    close_all,
    closed_loop,
    open_loop,
    poisson_arrivals,
)
from lookaside.bench.metrics import RequestRecord, summarize
from lookaside.bench.results import (
    BURST,
    CHAOS,
    CHURN,
    GRPC_ROUND_ROBIN,
    HETEROGENEOUS,
    SEED_SCENARIO,
    STALLS,
    SWEEP,
    XDS,
    XDS_LB_POLICY,
    BenchResults,
    CaseConfig,
    CaseResult,
    Environment,
    ParamValue,
    RunResult,
)
from lookaside.bench.stalls import StallLog, stall_backends
from lookaside.bench.xds_flow import StockXdsFlow
from lookaside.policies import POLICIES
from lookaside.v1 import load_balancer_pb2 as pb

LB_EVENT = "lb"  # churn events of the LB itself (chaos), kept out of per-backend figures
SCENARIOS = (SEED_SCENARIO, HETEROGENEOUS, CHURN, CHAOS, STALLS, SWEEP, BURST)
CLOSED_LOOP = (SEED_SCENARIO, BURST)
OPEN_LOOP = (HETEROGENEOUS, CHURN, CHAOS, STALLS, SWEEP)
OPEN_LOOP_FIELDS = ("slow_fraction", "slow_factor", "load_factor", "duration_s", "seed",
                    "kill_interval_s", "restart_delay_s", "load_factors", "stall_ms",
                    "stall_interval_s")  # fmt: skip
LATENCY_POLICIES = ("least_load", "p2c", "prequal", "peak_ewma")
BASELINE_LB_POLICY = "round_robin"  # the unused LB the baseline's backends register with

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop when it is installed (as the servers do), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional (Linux only)
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result


def known_policies() -> list[str]:
    return [*POLICIES, GRPC_ROUND_ROBIN, XDS]


@dataclass(frozen=True, slots=True)
class ScenarioDefaults:
    servers: tuple[int, ...]
    clients: int
    policies: tuple[str, ...]
    work_ms: float
    workers: int
    repeat: int
    timeout_s: float
    slow_fraction: float = 0.0
    load_factor: float = 0.7
    duration_s: float = 20.0
    load_factors: tuple[float, ...] = ()


def _available(*names: str) -> tuple[str, ...]:
    return tuple(n for n in names if n in POLICIES or n in (GRPC_ROUND_ROBIN, XDS))


def scenario_defaults(scenario: str) -> ScenarioDefaults:
    """What an unset flag means for each scenario (the seed's experiment for ``seed``)."""
    if scenario == SEED_SCENARIO:
        policies = _available("pick_first", "round_robin", "least_load", GRPC_ROUND_ROBIN, XDS)
        return ScenarioDefaults((10, 15), 100, policies, 500.0, 4, 3, 60.0)
    if scenario == HETEROGENEOUS:  # issue 4's configuration
        policies = _available(
            "round_robin", "least_load", "p2c", "weighted_round_robin", GRPC_ROUND_ROBIN, XDS
        )
        return ScenarioDefaults((6,), 100, policies, 40.0, 2, 1, 10.0, slow_fraction=1 / 3)
    if scenario == CHURN:
        policies = _available("round_robin", "least_load", "p2c", GRPC_ROUND_ROBIN)
        return ScenarioDefaults((6,), 100, policies, 20.0, 4, 1, 10.0, load_factor=0.5)
    if scenario == CHAOS:
        return ScenarioDefaults(
            (4,), 50, _available("least_load"), 20.0, 4, 1, 10.0, load_factor=0.3, duration_s=60
        )
    if scenario == STALLS:
        policies = _available(*LATENCY_POLICIES, GRPC_ROUND_ROBIN)
        return ScenarioDefaults((6,), 100, policies, 50.0, 4, 3, 10.0, load_factor=0.4)
    if scenario == SWEEP:  # the heterogeneous configuration, at every load
        policies = _available(*LATENCY_POLICIES, GRPC_ROUND_ROBIN)
        return ScenarioDefaults(
            (6,), 100, policies, 40.0, 2, 3, 10.0, slow_fraction=1 / 3, duration_s=10,
            load_factors=(0.3, 0.5, 0.7, 0.8, 0.9, 0.95),
        )  # fmt: skip
    if scenario == BURST:
        policies = _available("round_robin", *LATENCY_POLICIES)
        return ScenarioDefaults((10,), 100, policies, 200.0, 4, 3, 60.0)
    raise ValueError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """Everything one ``lookaside bench`` invocation runs with (written to results.json)."""

    scenario: str = SEED_SCENARIO
    servers: tuple[int, ...] = (10, 15)
    clients: int = 100
    requests_per_client: int = 1
    policies: tuple[str, ...] = ("pick_first", "round_robin", "least_load", GRPC_ROUND_ROBIN, XDS)
    work_ms: float = 500.0
    workers: int = 4
    work_mode: str = "sleep"
    repeat: int = 3
    timeout_s: float = 60.0
    service: str = "compute"
    slow_fraction: float = 0.0
    slow_factor: float = 4.0
    load_factor: float = 0.7
    duration_s: float = 20.0
    seed: int = 1
    kill_interval_s: float = 3.0
    restart_delay_s: float = 1.0
    load_factors: tuple[float, ...] = ()  # sweep: one case per load factor
    stall_ms: float = 300.0
    stall_interval_s: float = 2.0
    ttl: float | None = None
    report_interval: float | None = None
    lb_args: tuple[str, ...] = ()  # extra ``lookaside lb`` flags, e.g. policy tuning

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.scenario!r}")
        unknown = [p for p in self.policies if p not in known_policies()]
        if unknown:
            raise ValueError(
                f"unknown policy {', '.join(unknown)}; choose from: {', '.join(known_policies())}"
            )
        if self.scenario == CHAOS and GRPC_ROUND_ROBIN in self.policies:
            raise ValueError("the chaos scenario restarts the LB; grpc_round_robin has none")
        if self.scenario == CHAOS and XDS in self.policies:
            raise ValueError("the chaos scenario is LookasideClient's failover; xds has none")
        if not self.servers or min(self.servers) < 1 or self.clients < 1 or self.workers < 1:
            raise ValueError("servers, clients and workers must be at least 1")
        if self.repeat < 1 or self.requests_per_client < 1:
            raise ValueError("repeat and requests per client must be at least 1")
        if self.work_ms <= 0 and self.scenario in OPEN_LOOP:
            raise ValueError("open-loop scenarios need --work-ms > 0 to know the capacity")
        if not 0.0 <= self.slow_fraction <= 1.0 or self.slow_factor <= 0:
            raise ValueError("slow fraction must be within 0..1 and slow factor positive")
        if self.load_factor <= 0 or self.duration_s <= 0 or self.kill_interval_s <= 0:
            raise ValueError("load factor, duration and kill interval must be positive")
        if any(f <= 0 for f in self.load_factors) or self.stall_ms <= 0:
            raise ValueError("load factors and the stall length must be positive")
        if self.stall_interval_s <= 0:
            raise ValueError("the stall interval must be positive")

    def to_dict(self) -> dict[str, ParamValue | Sequence[ParamValue]]:
        """The options that mean something for this scenario (unset LB flags left out)."""
        unused = set(OPEN_LOOP_FIELDS) if self.scenario in CLOSED_LOOP else set()
        if self.scenario != CHAOS:
            unused.add("restart_delay_s")
        if self.scenario not in (CHURN, CHAOS):
            unused.add("kill_interval_s")
        if self.scenario != STALLS:
            unused |= {"stall_ms", "stall_interval_s"}
        unused.add("load_factor" if self.scenario == SWEEP else "load_factors")
        data: dict[str, ParamValue | Sequence[ParamValue]] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is not None and name not in unused:
                data[name] = list(value) if isinstance(value, tuple) else value
        return data


# ---------------------------------------------------------------- planning


def slow_count(servers: int, slow_fraction: float) -> int:
    """How many backends are slow: ``round(servers * fraction)``, never all when < 1."""
    count = round(servers * slow_fraction)
    return min(count, servers - 1) if slow_fraction < 1 else servers


def backend_specs(config: CaseConfig, options: BenchOptions) -> list[BackendSpec]:
    """backend1..backendN; the *last* ``slow_count`` of them are the slow ones."""
    slow = slow_count(config.servers, options.slow_fraction if config.scenario not in CLOSED_LOOP
                      else 0.0)  # fmt: skip
    specs = []
    for index, backend_id in enumerate(numbered_ids(config.servers), start=1):
        factor = options.slow_factor if index > config.servers - slow else 1.0
        specs.append(
            BackendSpec(
                id=backend_id,
                workers=config.workers,
                work_ms=config.work_ms * factor,
                work_mode=options.work_mode,
                service=config.service,
                report_interval=options.report_interval,
            )
        )
    return specs


def capacity_rps(specs: Sequence[BackendSpec]) -> float:
    """Requests per second all backends together can finish: sum of workers / work time."""
    return math.fsum(s.workers / (s.work_ms / 1000) for s in specs if s.work_ms > 0)


def plan(options: BenchOptions) -> list[CaseConfig]:
    """Every case, by load (sweep), server count, then policy, with its scenario parameters."""
    configs = []
    sweep = options.scenario == SWEEP
    for load_factor in options.load_factors if sweep else (options.load_factor,):
        for servers in options.servers:
            for policy in options.policies:
                config = CaseConfig(
                    policy=policy,
                    servers=servers,
                    clients=options.clients,
                    requests_per_client=options.requests_per_client,
                    work_ms=options.work_ms,
                    workers=options.workers,
                    scenario=options.scenario,
                    service=options.service,
                )
                configs.append(replace(config, params=_params(config, options, load_factor)))
    return configs


def _params(config: CaseConfig, options: BenchOptions, load_factor: float) -> dict[str, ParamValue]:
    params: dict[str, ParamValue] = {"timeout_s": options.timeout_s, "work_mode": options.work_mode}
    if options.ttl is not None:
        params["lb_ttl_s"] = options.ttl
    if options.report_interval is not None:
        params["report_interval_s"] = options.report_interval
    if options.lb_args:
        params["lb_args"] = " ".join(options.lb_args)
    if config.scenario in CLOSED_LOOP:
        return params
    specs = backend_specs(config, options)
    capacity = capacity_rps(specs)
    slow = [s.id for s in specs if s.work_ms > config.work_ms]
    params |= {
        "slow_fraction": options.slow_fraction,
        "slow_factor": options.slow_factor,
        "slow_backends": ",".join(slow) or "none",
        "load_factor": load_factor,
        "capacity_rps": round(capacity, 3),
        "rate_rps": round(capacity * load_factor, 3),
        "duration_s": options.duration_s,
        "seed": options.seed,
    }
    if config.scenario in (CHURN, CHAOS):
        params["kill_interval_s"] = options.kill_interval_s
    if config.scenario == CHAOS:
        params["restart_delay_s"] = options.restart_delay_s
    if config.scenario == STALLS:
        params |= {"stall_ms": options.stall_ms, "stall_interval_s": options.stall_interval_s}
    return params


# ---------------------------------------------------------------- one case


class Progress:
    """What the runner tells its caller while it works (the command draws rich bars)."""

    def case_started(self, label: str, requests: int) -> None:
        """A case begins; ``requests`` is how many it will send."""

    def request_done(self, record: RequestRecord) -> None:
        """One request finished (successfully or not)."""

    def case_finished(self, label: str, result: RunResult) -> None:
        """A case ended."""


def case_label(config: CaseConfig, repeat: int, repeats: int) -> str:
    load = f" at {float(config.params['load_factor']):.0%}" if config.scenario == SWEEP else ""
    return f"{config.scenario}: {config.policy}, {config.servers} backends{load}" + (
        f", run {repeat}/{repeats}" if repeats > 1 else ""
    )


def _lb_args(options: BenchOptions) -> list[str]:
    args: list[str] = []
    if options.ttl is not None:
        args += ["--ttl", f"{options.ttl:g}"]
    if options.report_interval is not None:
        args += ["--report-interval", f"{options.report_interval:g}"]
    return [*args, *options.lb_args]


def _make_clients(
    config: CaseConfig, fleet: Fleet, backends: Sequence[pb.BackendInfo]
) -> list[FlowClient]:
    count = config.clients
    if config.policy == XDS:
        return []  # the stock xDS client's channels live in its own process
    if config.policy == GRPC_ROUND_ROBIN:
        return [GrpcRoundRobinClient(backends) for _ in range(count)]
    flow = FailoverClient if config.scenario == CHAOS else SeedFlowClient
    return [flow(fleet.lb_target, config.service, f"client{i}") for i in range(1, count + 1)]


@dataclass
class _Events:
    """The churn/chaos task's log, and every backend id that ever existed."""

    churn: list[ChurnEvent] = field(default_factory=list)
    backend_ids: list[str] = field(default_factory=list)
    stalls: StallLog = field(default_factory=StallLog)


def _time_for_another(options: BenchOptions, until: float, down_s: float = 0.0) -> bool:
    """Room for one more kill, ``down_s`` of outage, and an interval of load after it."""
    return time.perf_counter() + 2 * options.kill_interval_s + down_s <= until


async def _churn(
    fleet: Fleet, options: BenchOptions, rng: random.Random, until: float, events: _Events
) -> None:
    """Every interval: SIGKILL a random backend, start a new one, note when it is registered."""
    next_number = len(fleet.specs) + 1
    while _time_for_another(options, until):
        await asyncio.sleep(options.kill_interval_s)
        victim = rng.choice(sorted(fleet.backends))
        events.churn.append(ChurnEvent("kill", victim, time.perf_counter()))
        fleet.kill(victim)
        new_id = f"backend{next_number}"
        next_number += 1
        fleet.spawn(replace(fleet.specs[victim], id=new_id))
        events.backend_ids.append(new_id)
        await fleet.wait_registered([new_id])
        events.churn.append(ChurnEvent("start", new_id, time.perf_counter()))


async def _chaos(
    fleet: Fleet,
    options: BenchOptions,
    lb_args: Sequence[str],
    policy: str,
    rng: random.Random,
    until: float,
    events: _Events,
) -> None:
    """Kill a backend, another backend, then the LB, and so on; each comes back after a delay.

    Backends come back under the same id; the LB comes back on the same port.
    """
    step = 0
    while _time_for_another(options, until, options.restart_delay_s):
        await asyncio.sleep(options.kill_interval_s)
        step += 1
        if step % 3 == 0:
            port = fleet.lb.port if fleet.lb is not None else 0
            events.churn.append(ChurnEvent("kill", LB_EVENT, time.perf_counter()))
            fleet.kill_lb()
            await asyncio.sleep(options.restart_delay_s)
            fleet.spawn_lb(policy, lb_args, port=port)
            await fleet.wait_lb()
            events.churn.append(ChurnEvent("start", LB_EVENT, time.perf_counter()))
            continue
        victim = rng.choice(sorted(fleet.backends))
        spec = fleet.specs[victim]
        events.churn.append(ChurnEvent("kill", victim, time.perf_counter()))
        fleet.kill(victim)
        await asyncio.sleep(options.restart_delay_s)
        fleet.spawn(spec)
        await fleet.wait_registered([victim])
        events.churn.append(ChurnEvent("start", victim, time.perf_counter()))


async def _drive(
    config: CaseConfig,
    options: BenchOptions,
    fleet: Fleet,
    lb_args: Sequence[str],
    repeat: int,
    on_record: OnRecord,
) -> tuple[list[RequestRecord], float, _Events]:
    backends = await fleet.wait_registered()
    events = _Events(backend_ids=[b.id for b in backends])
    clients = _make_clients(config, fleet, backends)
    warm = WarmConnections([fleet.lb_target, *(f"{b.address}:{b.port}" for b in backends)])
    xds = (
        StockXdsFlow(fleet.lb_target, config.service, config.clients, fleet.log_dir / "xds")
        if config.policy == XDS
        else None
    )
    try:
        await warm.open(clients)
        if xds is not None:
            await xds.start()
        if config.scenario in CLOSED_LOOP:
            records, wall = await (
                closed_loop(clients, config.requests_per_client, options.timeout_s, on_record)
                if xds is None
                else xds.closed_loop(config.requests_per_client, options.timeout_s, on_record)
            )
            return records, wall, events
        rng = random.Random(options.seed + repeat)
        arrivals = poisson_arrivals(float(config.params["rate_rps"]), options.duration_s, rng)
        started = time.perf_counter()
        until = started + options.duration_s
        side: asyncio.Task[None] | None = None
        if config.scenario == CHURN:
            side = asyncio.create_task(_churn(fleet, options, rng, until, events))
        elif config.scenario == CHAOS:
            side = asyncio.create_task(
                _chaos(fleet, options, lb_args, config.policy, rng, until, events)
            )
        elif config.scenario == STALLS:
            side = asyncio.create_task(
                stall_backends(
                    fleet, options.stall_ms, options.stall_interval_s, rng, until, events.stalls
                )
            )
        records, wall = await (
            open_loop(clients, arrivals, options.timeout_s, on_record, started)
            if xds is None
            else xds.open_loop(arrivals, options.timeout_s, on_record)
        )
        if side is not None:
            await side
        return records, wall, events
    finally:
        await close_all(clients)
        if xds is not None:
            await xds.close()
        await warm.close()


def expected_requests(config: CaseConfig) -> int:
    if config.scenario in CLOSED_LOOP:
        return config.requests
    return round(float(config.params["rate_rps"]) * float(config.params["duration_s"]))


def run_case(
    config: CaseConfig,
    options: BenchOptions,
    repeat: int,
    log_dir: Path,
    on_record: OnRecord = lambda record: None,
) -> RunResult:
    """One repeat of one case on a fresh LB and fresh backends; everything stopped after."""
    fleet = Fleet(log_dir)
    lb_args = _lb_args(options)
    lb_policy = {GRPC_ROUND_ROBIN: BASELINE_LB_POLICY, XDS: XDS_LB_POLICY}.get(
        config.policy, config.policy
    )
    try:
        fleet.start_lb(lb_policy, lb_args)
        fleet.spawn_all(backend_specs(config, options))
        records, wall, events = run_async(
            _drive(config, options, fleet, lb_args, repeat, on_record)
        )
    finally:
        fleet.stop()
    summary = summarize(records, wall_s=wall, backend_ids=events.backend_ids)
    backend_events = [e for e in events.churn if e.backend_id != LB_EVENT]
    churn = churn_figures(records, backend_events) if backend_events else None
    stalls = len(events.stalls.started) if config.scenario == STALLS else None
    return RunResult(config=config, repeat=repeat, summary=summary, churn=churn, stalls=stalls)


# ---------------------------------------------------------------- the whole bench


def run_bench(
    options: BenchOptions, out_dir: Path, progress: Progress | None = None
) -> BenchResults:
    """Run every case ``options.repeat`` times; returns everything measured."""
    progress = progress or Progress()
    configs = plan(options)
    runs: dict[int, list[RunResult]] = {index: [] for index in range(len(configs))}
    for repeat in range(1, options.repeat + 1):
        for index, config in enumerate(configs):
            label = case_label(config, repeat, options.repeat)
            progress.case_started(label, expected_requests(config))
            load = f"-{config.params['load_factor']}" if config.scenario == SWEEP else ""
            slug = f"{config.scenario}{load}-{config.servers}-{config.policy}-run{repeat}"
            result = run_case(config, options, repeat, out_dir / "logs" / slug,
                              progress.request_done)  # fmt: skip
            runs[index].append(result)
            progress.case_finished(label, result)
    cases = tuple(CaseResult(config, tuple(runs[index])) for index, config in enumerate(configs))
    return BenchResults(Environment.capture(), cases, options=options.to_dict())
