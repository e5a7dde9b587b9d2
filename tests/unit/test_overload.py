"""Overload on a backend: when it rejects, and what it then tells the LB (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from lookaside.backend.compute import ComputeService
from lookaside.backend.load_source import LoadMode, LoadSource
from lookaside.v1 import load_balancer_pb2 as pb


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code


class FakeContext:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


async def call(service: ComputeService, text: str = "ab") -> Any:
    try:
        return await service.ComputeTask(pb.TaskRequest(input=text), FakeContext())  # type: ignore[arg-type]
    except Aborted as error:
        return error.code


async def test_max_queue_zero_serves_while_a_worker_is_free_and_rejects_beyond() -> None:
    rejections: list[int] = []
    service = ComputeService(
        "b", workers=2, work_ms=50, max_queue=0, on_reject=lambda: rejections.append(1)
    )
    assert (await call(service)).result == "ba"  # idle: served, not rejected
    busy = [asyncio.ensure_future(call(service)) for _ in range(2)]
    await asyncio.sleep(0)  # both start and take the two workers
    assert await call(service) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [r.result for r in await asyncio.gather(*busy)] == ["ba", "ba"]
    assert service.counters.rejected == 1
    assert rejections == [1]


async def test_queue_up_to_max_queue() -> None:
    service = ComputeService("b", workers=1, work_ms=50, max_queue=2)
    running = [asyncio.ensure_future(call(service)) for _ in range(3)]  # 1 runs, 2 wait
    await asyncio.sleep(0)
    assert await call(service) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(await asyncio.gather(*running)) == 3
    assert service.saturation_load() == 3.0


@pytest.mark.parametrize("mode", [LoadMode.REAL, LoadMode.SIMULATED])
def test_a_rejection_is_reported_as_saturation_for_a_while(mode: LoadMode) -> None:
    now = [100.0]
    service = ComputeService("b", workers=4, work_ms=0, max_queue=8)
    source = LoadSource(service, mode, clock=lambda: now[0])
    assert source.report().load <= 1.0
    service.counters.rejected += 1  # as ComputeTask does when it rejects
    now[0] += 0.1
    report = source.report()
    assert report.load == service.saturation_load() == 3.0
    assert report.eps > 0
    now[0] += 0.5
    assert source.report().load == 3.0  # still hot: it rejected within the rate window
    now[0] += 0.6
    assert source.report().load <= 1.0  # no new rejection: back to the measured load


def test_max_queue_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_queue"):
        ComputeService("b", workers=1, work_ms=0, max_queue=-1)
