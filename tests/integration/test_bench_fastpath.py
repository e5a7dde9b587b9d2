"""`lookaside bench-fastpath` runs both modes and writes figures that make sense."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lookaside.procs import lookaside_command


def test_bench_fastpath_small_run(tmp_path: Path) -> None:
    out = tmp_path / "fastpath.json"
    args = ["bench-fastpath", "--servers", "2", "--clients", "2", "--requests-per-client", "100"]
    subprocess.run(
        [*lookaside_command(), *args, "--repeat", "1", "--json", str(out)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    figures = json.loads(out.read_text())
    assert {r["mode"] for r in figures["runs"]} == {"lb_per_request", "fast_path"}
    for run in figures["runs"]:
        assert run["requests"] == 200 and run["errors"] == 0
        assert 0 < run["p50_ms"] <= run["p99_ms"]
    medians = figures["medians"]
    # Local picks never call GetBackend: the LB works far less per request.
    assert medians["fast_path"]["lb_cpu_ms_per_1k"] < medians["lb_per_request"]["lb_cpu_ms_per_1k"]
