"""A stock grpcio client (no lookaside import) balanced by the LB's xDS service."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from lookaside.bench.xds_shares import StockClient
from lookaside.lb.xds import resources
from lookaside.security import TlsConfig
from tests.certs import make_pki
from tests.integration.harness import Cluster
from tests.integration.xds_lab import (
    RawAds,
    assert_both_fast_backends_served,
    settled_shares,
    start_fast_and_slow,
    stock_client,
)


@pytest.fixture
def client(cluster: Cluster) -> Iterator[StockClient]:
    cluster.start_lb("least_load")
    for name in ("a", "b", "c"):
        cluster.start_backend(name, work_ms=5)
    cluster.wait_registered({"a", "b", "c"})
    running = stock_client(cluster, "grpcio")
    try:
        yield running
    finally:
        running.stop()


def test_spreads_takes_in_a_joiner_and_drops_a_killed_backend(
    cluster: Cluster, client: StockClient
) -> None:
    client.wait_for(lambda: set(client.served_since(0)) == {"a", "b", "c"}, 20, "calls on all 3")

    cluster.start_backend("d", work_ms=5)
    cluster.wait_registered({"a", "b", "c", "d"})
    joined = client.now()
    client.wait_for(lambda: client.served_since(joined)["d"] > 0, 10, "calls on the joiner")
    first = min(w.t for w in client.windows if w.t > joined and w.served.get("d"))
    assert first - joined <= 3.0 + 0.5, f"the joiner's first calls came {first - joined:.1f}s late"

    cluster.backends["b"].kill()  # SIGKILL: no goodbye; the LB sees its load stream break
    killed = client.now()
    client.wait_until_time(killed + 4.0, 20)
    assert client.served_since(killed + 3.5)["b"] == 0
    assert sum(client.served_since(killed + 3.5).values()) > 0
    failed = client.failed_since(killed - 0.5)
    assert failed <= 10, f"{failed} calls failed around the kill"


def test_slow_backend_share_falls_below_a_fifth_once_weights_settle(cluster: Cluster) -> None:
    start_fast_and_slow(cluster)
    running = stock_client(cluster, "grpcio", concurrency=12)
    try:
        settled = settled_shares(running)
    finally:
        running.stop()
    print(f"grpcio shares after settling: {settled}")
    assert_both_fast_backends_served(settled)


def test_a_nack_is_logged_and_the_last_good_version_stays(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    cluster.start_backend("a")
    cluster.wait_registered({"a"})
    ads = RawAds(cluster.lb_target)
    try:
        ads.send(resources.LOAD_ASSIGNMENT, ["compute"])
        good = ads.next()
        ads.send(resources.LOAD_ASSIGNMENT, ["compute"], good, good.version_info)  # ACK
        cluster.start_backend("b")
        rejected = ads.next()
        assert int(rejected.version_info) > int(good.version_info)
        ads.send(
            resources.LOAD_ASSIGNMENT,
            ["compute"],
            rejected,
            good.version_info,
            "test client refuses this one",
        )
        with pytest.raises(queue.Empty):
            ads.next(timeout=1.5)  # the rejected version is not pushed again
        cluster.start_backend("c")
        newer = ads.next()
        assert int(newer.version_info) > int(rejected.version_info)
        assert len(newer.resources) == 1
        assert len(resources.unpack(newer.resources[0]).endpoints) == 3  # type: ignore[attr-defined]
    finally:
        ads.close()
    log = cluster.lb.log_text() if cluster.lb else ""
    nack = next(line for line in log.splitlines() if "xds NACK" in line)
    assert f"rejected={rejected.version_info}" in nack
    assert f"keeps={good.version_info}" in nack
    assert "test client refuses this one" in nack


def test_unknown_listener_is_answered_as_not_existing(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    ads = RawAds(cluster.lb_target)
    try:
        ads.send(resources.LISTENER, ["no-such-service"])
        response = ads.next()
        assert response.type_url == resources.LISTENER
        assert list(response.resources) == []
    finally:
        ads.close()


def test_the_client_token_guards_ads(cluster: Cluster) -> None:
    token_file = cluster.log_dir / "client.token"
    token_file.write_text("s3cret-client\n")
    cluster.start_lb("round_robin", "--client-token-file", str(token_file))
    anonymous = RawAds(cluster.lb_target)
    try:
        anonymous.send(resources.LISTENER, ["compute"])
        with pytest.raises(grpc.RpcError) as refused:
            anonymous.next()
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        anonymous.close()
    allowed = RawAds(cluster.lb_target, (("authorization", "Bearer s3cret-client"),))
    try:
        allowed.send(resources.LISTENER, ["compute"])
        assert allowed.next().type_url == resources.LISTENER
    finally:
        allowed.close()


def test_load_reports_from_a_stock_client_eject_a_hung_backend(cluster: Cluster) -> None:
    """SIGSTOP keeps b's lease (30 s) but its calls time out; the client's LRS counts eject it."""
    cluster.start_lb(
        "round_robin",
        "--ttl",
        "30",
        "--report-interval",
        "1",
        "--outlier-consecutive-failures",
        "3",
        "--outlier-max-percent",
        "50",
        "--log-level",
        "DEBUG",
    )
    for name in ("a", "b", "c"):
        cluster.start_backend(name)
    cluster.wait_registered({"a", "b", "c"})
    client = stock_client(cluster, "grpcio", concurrency=6, timeout=0.5)
    try:
        client.wait_for(lambda: set(client.served_since(0)) == {"a", "b", "c"}, 20, "all 3")
        cluster.backends["b"].signal(signal.SIGSTOP)
        stopped = client.now()
        client.wait_for(
            lambda: any(b.ejected for b in cluster.list_backends() if b.id == "b"),
            20,
            "b ejected from the stock client's load reports",
        )
        ejected = client.next_time()
        # The removal reaches the client within 1 s; a call sent to b just before
        # it fails at its 0.5 s deadline; a window reports calls ended up to 0.5 s
        # before its time.
        settled = ejected + 1.0 + 0.5 + 0.5
        client.wait_until_time(settled + 1.5, 20)
        after = client.served_since(settled)
        assert after["b"] == 0 and after["a"] > 0 and after["c"] > 0, after
        assert client.failed_since(settled) == 0
        assert client.failed_since(stopped) > 0  # it was the client's failures that counted
    finally:
        cluster.backends["b"].signal(signal.SIGCONT)
        client.stop()
    assert "xds load report" in (cluster.lb.log_text() if cluster.lb else "")


def test_a_tls_lb_is_reached_with_the_bootstrap_ca(cluster: Cluster, tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    cluster.admin_tls = TlsConfig(ca=pki.ca_cert)
    cluster.start_lb(
        "round_robin", "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)
    )
    for name in ("a", "b"):
        cluster.start_backend(name, "--tls-ca", str(pki.ca_cert))
    cluster.wait_registered({"a", "b"})
    client = stock_client(cluster, "grpcio", ca=pki.ca_cert)
    try:
        client.wait_for(lambda: set(client.served_since(0)) == {"a", "b"}, 20, "calls on both")
    finally:
        client.stop()


def test_joins_and_leaves_reach_a_subscribed_client_within_a_second(cluster: Cluster) -> None:
    cluster.start_lb("round_robin")
    cluster.start_backend("a")
    cluster.wait_registered({"a"})
    ads = RawAds(cluster.lb_target)

    def backends_in(response: object) -> set[str]:
        (body,) = response.resources  # type: ignore[attr-defined]
        return {loc.locality.sub_zone for loc in resources.unpack(body).endpoints}  # type: ignore[attr-defined]

    def next_set() -> tuple[set[str], float]:
        response = ads.next()
        ads.send(resources.LOAD_ASSIGNMENT, ["compute"], response, response.version_info)
        return backends_in(response), time.monotonic()

    try:
        ads.send(resources.LOAD_ASSIGNMENT, ["compute"])
        first, _ = next_set()
        assert first == {"a"}
        cluster.start_backend("b")
        cluster.wait_registered({"a", "b"})
        visible = time.monotonic()  # ListBackends shows b: the LB has registered it
        joined, pushed = next_set()
        assert joined == {"a", "b"}
        assert pushed - visible < 1.0
        cluster.backends["a"].stop()  # SIGTERM: a deregisters and is removed, not weight 0
        left, _ = next_set()
        assert left == {"b"}
        # The last backend leaving: an empty ClusterLoadAssignment, not a deletion or a crash.
        cluster.backends["b"].stop()
        empty, _ = next_set()
        assert empty == set()
    finally:
        ads.close()
