"""`lookaside bench-lb-cost` runs every case against a real LB and writes sensible figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lookaside.procs import lookaside_command


def test_bench_lb_cost_small_run(tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    args = [
        "bench-lb-cost", "--small-fleet", "5", "--large-fleet", "40", "--report-rate", "100",
        "--getbackend-rate", "50", "--watch-fleet", "20", "--watchers", "3", "--seconds", "1",
        "--repeat", "1", "--baseline", "none", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        [*lookaside_command(), *args], check=True, timeout=300, capture_output=True, text=True
    )
    assert "CPU per streamed report" in done.stdout
    (run,) = json.loads(out.read_text())["runs"]
    assert run["build"] == "after"
    assert run["reports_small"] > 50 and run["reports_large"] > 50
    assert run["cpu_us_per_report_small"] > 0 and run["cpu_us_per_report_large"] > 0
    assert run["getbackend_errors"] == 0
    assert 0 < run["getbackend_p50_ms"] <= run["getbackend_p99_ms"]
    assert run["watch_pushes_per_s"] > 0 and run["watch_bytes_per_push"] > 0
    assert run["watch_full_pushes"] == 0  # subscribers that accept deltas get no full set again
