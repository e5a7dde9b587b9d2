"""The lab's results data model, filled by the runner and read by ``report`` and ``plots``.

Frozen dataclasses with ``to_dict`` so that ``results.json`` holds exactly what
the report was made from: each case's configuration, every repeat's numbers,
their aggregate, and the machine the figures came from.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from lookaside.bench.churn import ChurnFigures
from lookaside.bench.metrics import Ideal, RunSummary, Spread, aggregate, efficiency, ideal

SEED_SCENARIO = "seed"
HETEROGENEOUS = "heterogeneous"
CHURN = "churn"
CHAOS = "chaos"
STALLS = "stalls"
SWEEP = "sweep"
BURST = "burst"

GRPC_ROUND_ROBIN = "grpc_round_robin"
"""Baseline: gRPC's own client-side ``round_robin`` over the static backend list, no LB."""

XDS = "xds"
"""A stock grpcio client (no lookaside import) dialling ``xds:///SERVICE``; the LB runs
:data:`XDS_LB_POLICY` and hands it locality weights computed from load."""
XDS_LB_POLICY = "least_load"

POLICY_ORDER: tuple[str, ...] = (
    "pick_first", "round_robin", "least_load", GRPC_ROUND_ROBIN, XDS,
)  # fmt: skip

ParamValue = int | float | str | bool


def policy_key(policy: str) -> tuple[int, str]:
    """Seed policies first in the seed's order, the baseline and xDS after, anything else by
    name."""
    try:
        return POLICY_ORDER.index(policy), ""
    except ValueError:
        return len(POLICY_ORDER), policy


@dataclass(frozen=True, slots=True)
class CaseConfig:
    """One combination the lab runs; ``params`` holds scenario parameters (rate, kills, ...)."""

    policy: str
    servers: int
    clients: int
    requests_per_client: int = 1
    work_ms: float = 500.0
    workers: int = 4
    scenario: str = SEED_SCENARIO
    service: str = "compute"
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.clients * self.requests_per_client

    def ideal(self) -> Ideal | None:
        """The closed-loop ideal; ``None`` for scenarios it does not describe (open loop, churn)."""
        if self.scenario not in (SEED_SCENARIO, BURST):
            return None
        return ideal(self.requests, self.servers, self.workers, self.work_ms / 1000, self.clients)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["params"] = dict(self.params)
        data["requests"] = self.requests
        return data


@dataclass(frozen=True, slots=True)
class RunResult:
    """One repeat of a case (``repeat`` counts from 1)."""

    config: CaseConfig
    repeat: int
    summary: RunSummary
    churn: ChurnFigures | None = None
    stalls: int | None = None  # backends stopped and continued during the run (stalls)

    @property
    def efficiency(self) -> float:
        best = self.config.ideal()
        if best is None or self.summary.wall_s <= 0:
            return math.nan
        return efficiency(best.wall_s, self.summary.wall_s)

    def figures(self) -> dict[str, float]:
        """Summary figures, efficiency, and the churn figures when the scenario had churn."""
        figures = {**self.summary.figures(), "efficiency": self.efficiency}
        if self.churn is not None:
            figures["stale_window_s"] = self.churn.max_stale_window_s
            figures["stale_picks"] = float(sum(self.churn.stale_picks.values()))
            figures["first_traffic_s"] = self.churn.max_first_traffic_s
            figures["starved"] = float(self.churn.starved)
        if self.stalls is not None:
            figures["stalls"] = float(self.stalls)
        return figures

    def to_dict(self) -> dict[str, object]:
        return {
            "repeat": self.repeat,
            "summary": self.summary.to_dict(),
            "efficiency": self.efficiency,
            "churn": None if self.churn is None else self.churn.to_dict(),
            "stalls": self.stalls,
        }


@dataclass(frozen=True, slots=True)
class CaseResult:
    """A case and all its repeats."""

    config: CaseConfig
    runs: tuple[RunResult, ...]

    def aggregate(self) -> dict[str, Spread]:
        """Median and min..max over repeats of every figure in :meth:`RunResult.figures`."""
        return aggregate([run.figures() for run in self.runs])

    def to_dict(self) -> dict[str, object]:
        best = self.config.ideal()
        return {
            "config": self.config.to_dict(),
            "ideal": None if best is None else best.to_dict(),
            "runs": [run.to_dict() for run in self.runs],
            "aggregate": {name: s.to_dict() for name, s in self.aggregate().items()},
        }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_head() -> str:
    """The short commit of the checkout this package runs from, or "" outside git."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def _usable_cpus() -> int:
    affinity: Callable[[int], set[int]] | None = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 0


@dataclass(frozen=True, slots=True)
class Environment:
    """Where the figures came from: a 2-core laptop and a 64-core server differ."""

    cpu_count: int
    usable_cpus: int
    platform: str
    python: str
    grpcio: str
    protobuf: str
    timestamp: str
    commit: str = ""  # the lookaside checkout's git HEAD, when there is one

    @classmethod
    def capture(cls, now: datetime | None = None) -> Environment:
        return cls(
            cpu_count=os.cpu_count() or 0,
            usable_cpus=_usable_cpus(),
            platform=platform.platform(),
            python=sys.version.split()[0],
            grpcio=_version("grpcio"),
            protobuf=_version("protobuf"),
            timestamp=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
            commit=_git_head(),
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class BenchResults:
    """Everything one ``lookaside bench`` invocation produced; ``options`` are its arguments."""

    environment: Environment
    cases: tuple[CaseResult, ...]
    options: Mapping[str, ParamValue | Sequence[ParamValue]] = field(default_factory=dict)

    def scenario(self, name: str) -> tuple[CaseResult, ...]:
        """The cases of one scenario, by server count then policy order."""
        chosen = [case for case in self.cases if case.config.scenario == name]
        return tuple(sorted(chosen, key=lambda c: (c.config.servers, policy_key(c.config.policy))))

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(case.config.scenario for case in self.cases))

    def to_dict(self) -> dict[str, object]:
        return {
            "environment": self.environment.to_dict(),
            "options": dict(self.options),
            "cases": [case.to_dict() for case in self.cases],
        }


def jsonable(value: object) -> object:
    """``value`` with NaN and infinities as ``null``: strict JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def write_results_json(results: BenchResults, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(jsonable(results.to_dict()), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path
