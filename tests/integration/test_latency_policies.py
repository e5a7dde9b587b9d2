"""``prequal`` and ``peak_ewma`` end to end: real LB, real backends, both pick paths.

The backends report requests in flight and a latency estimate; the LB's
``GetBackend`` and the fast-path client's local picks run the same policy code
on them. One backend is eight times slower than the other two: whichever path
picks, it must get the fewest requests, and every request must succeed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

import pytest

from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.client.lookaside_client import LookasideClient
from tests.integration.harness import Cluster

FAST, SLOW = ("fast1", "fast2"), "slow"
WORKERS = "2"
REQUESTS = 120


async def _load(client: LookasideClient, requests: int, concurrency: int = 6) -> Counter[str]:
    """``requests`` calls, ``concurrency`` at a time; every answer is checked."""
    served: Counter[str] = Counter()

    async def worker(first: int) -> None:
        for number in range(first, requests, concurrency):
            reply = await client.compute(f"req{number}", timeout=10)
            assert reply.result == f"req{number}"[::-1]
            served[reply.backend_id] += 1

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return served


@pytest.mark.parametrize("policy", ["prequal", "peak_ewma"])
def test_latency_policy_end_to_end(cluster: Cluster, policy: str) -> None:
    cluster.start_lb(policy, "--watch-min-gap", "0.05")
    for name in FAST:
        cluster.start_backend(name, "--workers", WORKERS, work_ms=10)
    cluster.start_backend(SLOW, "--workers", WORKERS, work_ms=80)
    cluster.wait_registered({*FAST, SLOW})

    async def run() -> tuple[Counter[str], Counter[str]]:
        async with LookasideClient(cluster.lb_target) as client:
            by_lb = await _load(client, REQUESTS)
        local_picks = replace(LOOKASIDE_CLIENT_DEFAULTS, fast_path=True)
        async with LookasideClient(cluster.lb_target, config=local_picks) as local:
            await local.wait_fast_path()
            by_client = await _load(local, REQUESTS)
        return by_lb, by_client

    by_lb, by_client = asyncio.run(run())
    for served in (by_lb, by_client):
        assert sum(served.values()) == REQUESTS
        assert served[SLOW] < min(served[name] for name in FAST), served
    reports = {b.id: b.last_report for b in cluster.list_backends()}
    assert all(reports[name].latency_ms > 0 for name in (*FAST, SLOW)), reports
    assert reports[SLOW].latency_ms > max(reports[name].latency_ms for name in FAST)
