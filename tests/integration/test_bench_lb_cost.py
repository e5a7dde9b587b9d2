"""`lookaside bench-lb-cost` runs every case against a real LB and writes sensible figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lookaside.procs import lookaside_command


def test_bench_lb_cost_small_run(tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    args = [
        "bench-lb-cost", "--small-fleet", "5", "--large-fleet", "40", "--huge-fleet", "60",
        "--report-rate", "100", "--getbackend-rate", "50", "--watch-fleet", "20",
        "--watchers", "3", "--seconds", "1", "--repeat", "1", "--generators", "2",
        "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        [*lookaside_command(), *args], check=True, timeout=300, capture_output=True, text=True
    )
    for row in ("CPU per streamed report, 60 backends", "ratio 60 / 5", "GetBackend p99"):
        assert row in done.stdout
    assert "at most 1.2x" in done.stdout and "bench-replica-cost" in done.stdout
    (run,) = json.loads(out.read_text())["runs"]
    assert run["build"] == "after"
    # Every slice of the fleet reported, at about the rate asked (100/s for 1 s).
    assert min(run["reports_small"], run["reports_large"], run["reports_huge"]) > 50
    assert run["cpu_us_per_report_small"] > 0 and run["cpu_us_per_report_huge"] > 0
    assert run["cpu_ratio_huge"] > 0
    assert run["getbackend_errors"] == 0
    assert 0 < run["getbackend_p50_ms"] <= run["getbackend_p99_ms"]
    assert 20 <= run["getbackend_reports_per_s"] <= 60  # the 40 backends at 1 Hz each
    assert run["watch_pushes_per_s"] > 0 and run["watch_bytes_per_push"] > 0
    assert run["watch_full_pushes"] == 0  # subscribers that accept deltas get no full set again
