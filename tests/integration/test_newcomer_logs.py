"""``--log-format json`` on real servers: every line one JSON object with stable fields,
and no line per request at INFO."""

from __future__ import annotations

import json

from tests.integration.harness import Cluster, LoadRun, wait_until


def records(text: str) -> list[dict[str, str]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # fails on any line that is not JSON


def test_json_logs_from_lb_and_backend(cluster: Cluster) -> None:
    json_logs = ("--log-format", "json")
    lb = cluster.start_lb("round_robin", *json_logs)
    backend = cluster.start_backend("j1", *json_logs)
    cluster.wait_registered({"j1"})
    with LoadRun(cluster.lb_target, concurrency=2, limit=200) as load:
        load.wait_ok(200)
    backend.stop()
    wait_until(lambda: "deregistered" in lb.log_text(), 15, "the LB to log the deregistration")
    lb_records = records(lb.log_text())
    events = {r["event"]: r for r in lb_records}
    registered = events["registered"]
    assert registered["backend"] == "j1"
    assert registered["service"] == "compute"
    assert registered["logger"] == "lookaside.lb" and registered["level"] == "INFO"
    assert events["deregistered"]["backend"] == "j1"
    assert any(r["event"].startswith("listening on") for r in lb_records)
    assert len(lb_records) < 20  # 200 requests, and no line for any of them
    backend_events = {r["event"] for r in records(backend.log_text())}
    assert "registered" in backend_events
