"""The sidecar's health following against a target that has ``Check`` but no ``Watch``.

A real grpc.aio server on loopback in this process, with a health servicer
that implements only ``Check`` (``Watch`` answers UNIMPLEMENTED, as the
generated base class does).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from lookaside.backend.sidecar import SidecarConfig, TargetHealth
from tests.integration.userprocs import until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class CheckOnly(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self.status = SERVING

    async def Check(self, request: Any, context: Any) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=self.status)


@pytest.mark.parametrize("health_service", ["", "userservice.v1.Echo"])
async def test_polled_check_follows_flips_when_watch_is_missing(health_service: str) -> None:
    servicer = CheckOnly()
    server = aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = SidecarConfig(
        lb="127.0.0.1:1",
        target=f"127.0.0.1:{port}",
        service="userservice.v1.Echo",
        health_service=health_service,
        health_poll_interval=0.05,
    )
    flips: list[bool] = []
    try:
        async with aio.insecure_channel(config.target) as channel:
            health = TargetHealth(channel, config, flips.append)
            task = asyncio.create_task(health.run())
            await until(lambda: flips == [True], 5, "SERVING from the first Check")
            servicer.status = NOT_SERVING
            await until(lambda: flips == [True, False], 5, "NOT_SERVING from a later Check")
            servicer.status = SERVING
            await until(lambda: flips == [True, False, True], 5, "SERVING again")
            await server.stop(0)  # unreachable counts as not serving
            await until(lambda: flips[-1] is False, 5, "a failed Check")
            task.cancel()
    finally:
        await server.stop(0)
