"""The ``stalls`` scenario's side task: one backend at a time stops answering for a while.

A process under a stop-the-world GC pause, a noisy neighbour or a throttled
CPU answers nothing, reports nothing and keeps its connections open; SIGSTOP
and SIGCONT of a backend process is exactly that. Its load stream stays open
and its lease (5 s) outlives the pause, so the LB is not told: only policies
that notice silence can avoid it. Every ``interval`` seconds on average
(uniformly 0.5x to 1.5x, drawn from the repeat's seed so every policy sees the
same schedule) a random backend is stopped for ``stall_ms``.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass, field

from lookaside.bench.fleet import Fleet


@dataclass
class StallLog:
    """When each stall began, by backend, at ``time.perf_counter`` time."""

    started: list[tuple[str, float]] = field(default_factory=list)


async def stall_backends(
    fleet: Fleet,
    stall_ms: float,
    interval: float,
    rng: random.Random,
    until: float,
    log: StallLog,
) -> None:
    """Stop and continue backends, one at a time, until ``until``; never leaves one stopped."""
    stall = stall_ms / 1000.0
    while True:
        wait = interval * rng.uniform(0.5, 1.5)
        if time.perf_counter() + wait + stall > until:
            return
        await asyncio.sleep(wait)
        victim = rng.choice(sorted(fleet.backends))
        process = fleet.backends[victim]
        process.signal(signal.SIGSTOP)
        log.started.append((victim, time.perf_counter()))
        try:
            await asyncio.sleep(stall)
        finally:
            process.signal(signal.SIGCONT)
