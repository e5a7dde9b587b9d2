"""``lookaside status`` against real processes: the table, --json, --service, --watch,
and one clear line with exit 1 when the LB cannot be asked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.integration.harness import Cluster, LoadRun


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookaside", "status", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_table_json_and_one_service(cluster: Cluster) -> None:
    cluster.start_lb("round_robin", "--service-policy", "search=pick_first")
    cluster.start_backend("s1")
    cluster.start_backend("s2")
    cluster.start_backend("q1", "--service", "search")
    cluster.wait_registered({"s1", "s2"})
    with LoadRun(cluster.lb_target, concurrency=2, limit=40) as load:
        load.wait_ok(40)

    result = status("--lb", cluster.lb_target)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "SERVICE", "POLICY", "BACKEND", "ADDRESS", "STATE", "LOAD", "LAST", "REPORT", "PICKS"
    ]  # fmt: skip
    rows = {line.split()[2]: line.split() for line in lines[1:]}
    assert set(rows) == {"s1", "s2", "q1"}
    assert rows["s1"][:2] == ["compute", "round_robin"]
    assert rows["q1"][:2] == ["search", "pick_first"]
    assert rows["s1"][3] == f"127.0.0.1:{cluster.backends['s1'].port}"
    assert rows["s1"][4] == "serving"
    assert int(rows["s1"][-1]) + int(rows["s2"][-1]) >= 40  # picks

    result = status("--lb", cluster.lb_target, "--json", "--service", "compute")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["lb"] == cluster.lb_target
    [compute] = document["services"]
    assert compute["name"] == "compute" and compute["policy"] == "round_robin"
    backends = {b["id"]: b for b in compute["backends"]}
    assert set(backends) == {"s1", "s2"}
    assert backends["s1"]["state"] == "serving"
    assert backends["s1"]["report_age_seconds"] < 5
    assert backends["s1"]["picks"] + backends["s2"]["picks"] >= 40


def test_watch_redraws_until_interrupted(cluster: Cluster) -> None:
    cluster.start_lb()
    cluster.start_backend("w1")
    cluster.wait_registered({"w1"})
    watch = subprocess.Popen(
        [sys.executable, "-m", "lookaside", "status", "--lb", cluster.lb_target, "--watch",
         "--json", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert watch.stdout is not None
        first = json.loads(watch.stdout.readline())
        cluster.start_backend("w2")
        deadline = time.monotonic() + 20
        ids: set[str] = set()
        while ids != {"w1", "w2"} and time.monotonic() < deadline:
            ids = {b["id"] for b in json.loads(watch.stdout.readline())["services"][0]["backends"]}
        assert {b["id"] for b in first["services"][0]["backends"]} == {"w1"}
        assert ids == {"w1", "w2"}  # the newcomer appeared in a later redraw
        watch.send_signal(signal.SIGINT)
        assert watch.wait(10) == 0
    finally:
        watch.kill()
        watch.wait()


def test_unreachable_lb_is_one_line_and_exit_1(cluster: Cluster) -> None:
    result = status("--lb", "127.0.0.1:1")
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        result.stderr == "lookaside status: cannot reach the LB at 127.0.0.1:1: "
        "connection refused\n"
    )


def test_a_backend_address_is_named_as_such(cluster: Cluster) -> None:
    cluster.start_lb()
    backend = cluster.start_backend("not-an-lb")
    result = status("--lb", f"127.0.0.1:{backend.port}")
    assert result.returncode == 1
    assert result.stderr == (
        f"lookaside status: 127.0.0.1:{backend.port} serves no lookaside.v1.LoadBalancer "
        "(is it a backend?)\n"
    )
