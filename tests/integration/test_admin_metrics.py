"""The LB's admin port with real processes: /metrics moves under traffic (parsed with
prometheus_client's own parser), /healthz and /readyz answer, a taken admin port is
one line and a non-zero exit."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from dataclasses import replace

from grpc import aio
from prometheus_client.parser import text_string_to_metric_families

from lookaside.client.config import LOOKASIDE_CLIENT_DEFAULTS
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.admin_helpers import admin_url, get
from tests.integration.harness import Cluster, LoadRun, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    status, body = get(base + "metrics")
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (n, got), value in samples.items() if n == name and wanted <= got)


def test_metrics_move_under_traffic(cluster: Cluster) -> None:
    lb = cluster.start_lb("round_robin", "--admin-port", "0")
    base = admin_url(lb)
    assert get(base + "healthz") == (200, "ok\n")
    assert get(base + "readyz") == (200, "ready\n")
    for backend_id in ("m1", "m2", "m3"):
        cluster.start_backend(backend_id)
    cluster.wait_registered({"m1", "m2", "m3"})
    before = scrape(base)
    assert total(before, "lookaside_registrations_total", service="compute") == 3
    assert total(before, "lookaside_backends", service="compute", state="serving") == 3

    with LoadRun(cluster.lb_target, concurrency=4, limit=300) as load:
        load.wait_ok(300)
    fast_path = replace(LOOKASIDE_CLIENT_DEFAULTS, fast_path=True)
    with LoadRun(cluster.lb_target, concurrency=2, limit=100_000, config=fast_path) as fast:
        fast.wait_ok(50)
        during = scrape(base)
        assert total(during, "lookaside_watch_subscribers") >= 1
        assert total(during, "lookaside_watch_pushes_total", service="compute") >= 1
    after = scrape(base)

    picks = total(after, "lookaside_picks_total", service="compute", policy="round_robin")
    assert picks >= 300
    for backend_id in ("m1", "m2", "m3"):  # round robin: each got its share
        assert total(after, "lookaside_picks_total", backend=backend_id) >= 50
    served = total(after, "lookaside_get_backend_duration_seconds_count", code="OK")
    assert served >= 300
    assert total(after, "lookaside_get_backend_duration_seconds_sum") > 0
    assert total(after, "lookaside_load_reports_total") > total(
        before, "lookaside_load_reports_total"
    )
    assert total(after, "lookaside_load_streams") == 3

    # Leaving: SIGTERM deregisters; SIGKILL breaks the load stream.
    cluster.backends["m1"].stop()
    cluster.backends["m2"].kill()
    wait_until(lambda: cluster.live_ids() == {"m3"}, 15, "m1 and m2 gone")
    gone = scrape(base)
    assert total(gone, "lookaside_deregistrations_total", reason="deregister") == 1
    assert total(gone, "lookaside_deregistrations_total", reason="stream_ended") == 1
    assert total(gone, "lookaside_backends", state="serving") == 1
    assert total(gone, "lookaside_picks_total", backend="m1") == 0  # its series left with it

    # A SIGSTOPped backend stops reporting: its lease expires.
    cluster.backends["m3"].signal(signal.SIGSTOP)
    try:
        wait_until(lambda: total(scrape(base), "lookaside_lease_expiries_total") == 1, 15, "expiry")
    finally:
        cluster.backends["m3"].signal(signal.SIGCONT)


async def get_backend(lb_target: str, service: str) -> None:
    async with aio.insecure_channel(lb_target) as channel:
        with contextlib.suppress(aio.AioRpcError):
            await pb_grpc.LoadBalancerStub(channel).GetBackend(
                pb.ServerRequest(service_name=service), timeout=5
            )


def test_unknown_service_does_not_add_series(cluster: Cluster) -> None:
    lb = cluster.start_lb("round_robin", "--admin-port", "0")
    base = admin_url(lb)
    cluster.start_backend("u1")
    cluster.wait_registered({"u1"})
    not_found = "lookaside_get_backend_duration_seconds_count"

    def ask_for_nosuch() -> bool:
        asyncio.run(get_backend(cluster.lb_target, "nosuch"))
        return total(scrape(base), not_found, code="NOT_FOUND") > 0

    # UNAVAILABLE while the LB is younger than a TTL, then NOT_FOUND.
    wait_until(ask_for_nosuch, 20, "NOT_FOUND for the unknown service")
    services = {dict(labels).get("service") for (_, labels) in scrape(base)} - {None}
    assert services == {"compute"}


def test_a_taken_admin_port_is_one_line_and_exit_1(cluster: Cluster) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "lookaside", "lb", "--port", "0", "--admin-port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == (
        f"lookaside lb: cannot listen on 127.0.0.1:{port} (admin): address already in use"
    ), result.stderr
    assert "Traceback" not in result.stderr
