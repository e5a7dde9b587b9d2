"""`lookaside bench-replica-cost` runs both set-ups over a real etcd and prints the verdict."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lookaside.procs import lookaside_command


def test_bench_replica_cost_small_run(etcd_installed: str, tmp_path: Path) -> None:
    out = tmp_path / "replica-cost.json"
    args = [
        "bench-replica-cost", "--fleet", "12", "--report-rate", "60", "--seconds", "1",
        "--warmup", "0.5", "--repeat", "1", "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        [*lookaside_command(), *args], check=True, timeout=300, capture_output=True, text=True
    )
    assert "replicas / lone_share" in done.stdout and "goal at most 1.5x" in done.stdout
    body = json.loads(out.read_text())
    runs = {run["setup"]: run for run in body["runs"]}
    assert set(runs) == {"lone", "lone_share", "replicas"}
    for run in runs.values():
        assert run["cpu_us_per_report"] > 0
    assert runs["lone"]["reports"] > 30 and runs["replicas"]["reports"] > 30  # 60/s for 1 s
    assert 5 < runs["lone_share"]["reports"] < 40  # one replica's share: 20/s
    assert runs["lone"]["etcd_writes_per_s"] == runs["lone_share"]["etcd_writes_per_s"] == 0
    assert 0 < runs["replicas"]["etcd_writes_per_s"] < 50  # batched: never a write per report
    assert body["ratios"]["lone"] > 0 and body["ratios"]["lone_share"] > 0
