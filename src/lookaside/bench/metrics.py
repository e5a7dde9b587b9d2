"""Per-request records and the figures a run is judged by.

Everything here is pure arithmetic over :class:`RequestRecord` values, so the
numbers in the report can be checked by hand and by unit tests.

Percentiles use linear interpolation between closest ranks — numpy's default
``method="linear"`` (Hyndman & Fan type 7): for sorted values ``x[0..n-1]`` the
q-th percentile sits at rank ``h = (n - 1) * q / 100`` and is
``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. It never
invents a value outside the observed range, and p0 / p100 are the min / max.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One client request as the client saw it; times from ``time.perf_counter``.

    ``backend_id`` is empty when the LB never named a backend. ``total_ms`` is
    measured by the client around the whole request (LB query, compute call and
    any retries), so it is not necessarily ``lb_ms + compute_ms``.
    """

    backend_id: str
    start: float
    end: float
    lb_ms: float
    compute_ms: float
    total_ms: float
    ok: bool
    error: str = ""
    retries: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def natural_key(text: str) -> tuple[str | int, ...]:
    """Sort key that orders embedded numbers by value: ``backend2`` before ``backend10``."""
    parts = _DIGITS.split(text)
    # re.split with a group alternates text, number, text, ...: positions always compare alike.
    return tuple(int(part) if index % 2 else part.lower() for index, part in enumerate(parts))


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation (see module docstring)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Distribution of one duration in milliseconds; NaN everywhere when ``count`` is 0."""

    count: int
    avg_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> LatencyStats:
        if not values_ms:
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan, nan)
        return cls(
            count=len(values_ms),
            avg_ms=math.fsum(values_ms) / len(values_ms),
            min_ms=min(values_ms),
            max_ms=max(values_ms),
            p50_ms=percentile(values_ms, 50),
            p95_ms=percentile(values_ms, 95),
            p99_ms=percentile(values_ms, 99),
        )

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class UsageSpread:
    """How evenly requests landed: fewest and most per backend, and how many were used."""

    min_requests: int
    max_requests: int
    used: int
    total: int

    @classmethod
    def of(cls, usage: Mapping[str, int]) -> UsageSpread:
        counts = list(usage.values())
        if not counts:
            return cls(0, 0, 0, 0)
        return cls(min(counts), max(counts), sum(1 for c in counts if c > 0), len(counts))

    def __str__(self) -> str:
        return f"{self.min_requests}..{self.max_requests} ({self.used}/{self.total} used)"


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The figures of one client run, as the seed reported them and a few more.

    ``response_ms``, ``lb_ms`` and ``compute_ms`` cover successful requests only;
    failures are counted in ``errors`` (by message in ``error_kinds``).
    ``backend_usage`` counts every request sent to a backend, whatever its outcome,
    in natural order of backend id, and includes known backends that got none.
    """

    requests: int
    completed: int
    errors: int
    retries: int
    wall_s: float
    throughput_rps: float
    response_ms: LatencyStats
    lb_ms: LatencyStats
    compute_ms: LatencyStats
    backend_usage: dict[str, int]
    error_kinds: dict[str, int]

    @property
    def usage_spread(self) -> UsageSpread:
        return UsageSpread.of(self.backend_usage)

    @property
    def busiest_ratio(self) -> float:
        """Requests on the busiest backend / the mean per backend (1.0 = perfectly even)."""
        counts = list(self.backend_usage.values())
        total = sum(counts)
        return max(counts) * len(counts) / total if total else math.nan

    def figures(self) -> dict[str, float]:
        """The scalar figures that repeats are aggregated over (see :func:`aggregate`)."""
        r = self.response_ms
        return {
            "avg_ms": r.avg_ms,
            "min_ms": r.min_ms,
            "max_ms": r.max_ms,
            "p50_ms": r.p50_ms,
            "p95_ms": r.p95_ms,
            "p99_ms": r.p99_ms,
            "lb_avg_ms": self.lb_ms.avg_ms,
            "compute_avg_ms": self.compute_ms.avg_ms,
            "throughput_rps": self.throughput_rps,
            "wall_s": self.wall_s,
            "errors": float(self.errors),
            "busiest_ratio": self.busiest_ratio,
        }

    def to_dict(self) -> dict[str, object]:
        spread = self.usage_spread
        return {
            "requests": self.requests,
            "completed": self.completed,
            "errors": self.errors,
            "retries": self.retries,
            "wall_s": self.wall_s,
            "throughput_rps": self.throughput_rps,
            "response_ms": self.response_ms.to_dict(),
            "lb_ms": self.lb_ms.to_dict(),
            "compute_ms": self.compute_ms.to_dict(),
            "backend_usage": dict(self.backend_usage),
            "usage_spread": asdict(spread),
            "error_kinds": dict(self.error_kinds),
        }


def median_figures(runs: Iterable[object], figures: Sequence[str]) -> dict[str, float]:
    """Each figure's median over repeated runs: what the side-by-side benches quote."""
    mine = list(runs)
    return {f: statistics.median(float(getattr(r, f)) for r in mine) for f in figures}


def throughput(completed: int, wall_s: float) -> float:
    """Completed requests per second of the whole run's wall time (the seed's definition)."""
    if wall_s <= 0:
        raise ValueError(f"wall time must be positive, got {wall_s}")
    return completed / wall_s


def backend_usage(
    records: Iterable[RequestRecord], backend_ids: Iterable[str] = ()
) -> dict[str, int]:
    """Requests per backend id in natural order; ``backend_ids`` adds backends that got none."""
    counts: Counter[str] = Counter({backend_id: 0 for backend_id in backend_ids})
    counts.update(r.backend_id for r in records if r.backend_id)
    return {name: counts[name] for name in natural_sorted(counts)}


def summarize(
    records: Sequence[RequestRecord],
    wall_s: float | None = None,
    backend_ids: Iterable[str] = (),
) -> RunSummary:
    """Summarise one run.

    ``wall_s`` should be the runner's own measure of the whole run (first client
    started to last one finished); without it the span of the records is used.
    """
    if wall_s is None:
        wall_s = max(r.end for r in records) - min(r.start for r in records) if records else 0.0
    good = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    return RunSummary(
        requests=len(records),
        completed=len(good),
        errors=len(failed),
        retries=sum(r.retries for r in records),
        wall_s=wall_s,
        throughput_rps=throughput(len(good), wall_s) if wall_s > 0 else math.nan,
        response_ms=LatencyStats.of([r.total_ms for r in good]),
        lb_ms=LatencyStats.of([r.lb_ms for r in good]),
        compute_ms=LatencyStats.of([r.compute_ms for r in good]),
        backend_usage=backend_usage(records, backend_ids),
        error_kinds=dict(Counter(r.error or "unknown" for r in failed).most_common()),
    )


@dataclass(frozen=True, slots=True)
class Ideal:
    """The best any balancer could do for a closed-loop run with every request ready at t=0.

    With ``slots = N * W`` (or fewer, if there are fewer clients than slots) the
    requests go in waves of ``slots``: wave ``k`` (1-based) finishes at ``k * T``.
    """

    wall_s: float
    throughput_rps: float
    min_ms: float
    avg_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _slots(backends: int, workers: int, clients: int | None) -> int:
    if backends < 1 or workers < 1:
        raise ValueError("need at least one backend and one worker")
    slots = backends * workers
    return slots if clients is None else max(1, min(slots, clients))


def ideal_wall_s(
    requests: int, backends: int, workers: int, work_s: float, clients: int | None = None
) -> float:
    """``ceil(R / (N * W)) * T``: the smallest possible wall time for the run."""
    return math.ceil(requests / _slots(backends, workers, clients)) * work_s


def ideal(
    requests: int, backends: int, workers: int, work_s: float, clients: int | None = None
) -> Ideal:
    """Ideal wall time, throughput and response times (see :class:`Ideal`)."""
    if requests < 1 or work_s <= 0:
        raise ValueError("need at least one request and a positive work time")
    slots = _slots(backends, workers, clients)
    waves = math.ceil(requests / slots)
    wall = waves * work_s
    # Full waves 1..waves-1 hold `slots` requests each; the last holds the rest.
    last = requests - (waves - 1) * slots
    wave_sum = slots * (waves - 1) * waves / 2 + last * waves
    return Ideal(
        wall_s=wall,
        throughput_rps=requests / wall,
        min_ms=work_s * 1000,
        avg_ms=work_s * 1000 * wave_sum / requests,
        max_ms=wall * 1000,
    )


def efficiency(ideal_wall: float, wall_s: float) -> float:
    """Ideal wall time / our wall time: 1.0 is perfect, 0.5 took twice as long."""
    if wall_s <= 0:
        raise ValueError(f"wall time must be positive, got {wall_s}")
    return ideal_wall / wall_s


@dataclass(frozen=True, slots=True)
class Spread:
    """A figure over repeats: the median, and the range it moved in."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(statistics.median(finite), min(finite), max(finite), len(finite))

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def aggregate(runs: Sequence[Mapping[str, float]]) -> dict[str, Spread]:
    """Median and min..max of every figure the runs share (NaNs, e.g. no successes, skipped)."""
    if not runs:
        return {}
    names = [name for name in runs[0] if all(name in run for run in runs)]
    return {name: Spread.of([run[name] for run in runs]) for name in names}
