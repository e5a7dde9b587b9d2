"""Following a server's own health servicer, blocking and aio (no sockets)."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2

from lookaside.backend.health import HealthFollower, new_servicer
from lookaside.backend.sidecar import SidecarConfig

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_blocking_servicer_flips_are_followed() -> None:
    flips: list[bool] = []
    follower = HealthFollower(new_servicer(aio=False), ["my.Service"], flips.append)
    servicer = follower.servicer
    servicer.set("other.Service", NOT_SERVING)  # not ours: ignored
    assert follower.serving and flips == []
    servicer.set("my.Service", NOT_SERVING)
    servicer.set("", NOT_SERVING)  # still not serving: no second flip
    servicer.set("my.Service", SERVING)  # the server as a whole is still down
    assert flips == [False] and not follower.serving
    servicer.set("", SERVING)
    assert flips == [False, True]
    request = health_pb2.HealthCheckRequest(service="my.Service")
    assert servicer.Check(request, None).status == SERVING  # it still answers as before


async def test_aio_servicer_flips_are_followed() -> None:
    flips: list[bool] = []
    follower = HealthFollower(new_servicer(aio=True), [], flips.append)
    await follower.servicer.set("", NOT_SERVING)
    await follower.servicer.set("", SERVING)
    assert flips == [False, True]


def test_sidecar_defaults_come_from_the_target() -> None:
    config = SidecarConfig(lb="127.0.0.1:1", target="10.0.0.5:7000", service="s")
    assert (config.backend_id, config.advertised_host) == ("10.0.0.5:7000", "10.0.0.5")
    moved = SidecarConfig(lb="127.0.0.1:1", target="[::1]:7000", service="s", advertise_host="::1")
    assert moved.backend_id == "[::1]:7000"
    with pytest.raises(ValueError, match="--advertise-host"):
        SidecarConfig(lb="127.0.0.1:1", target="0.0.0.0:7000", service="s")
    with pytest.raises(ValueError, match="--lb"):
        SidecarConfig(lb="a:1,a:1", target="127.0.0.1:7000", service="s")
