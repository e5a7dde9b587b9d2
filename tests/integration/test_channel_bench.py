"""``lookaside bench-channel`` runs end to end (tiny settings) and writes its figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lookaside.procs import lookaside_command


def test_bench_channel_small_run(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    args = ["--servers", "2", "--concurrency", "4", "--requests", "80", "--repeat", "1"]
    done = subprocess.run(
        [*lookaside_command(), "bench-channel", *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    modes = {run["mode"] for run in figures["runs"]}
    assert modes == {
        "channel",
        "grpc_aio",
        "sync_channel",
        "grpc_sync",
        "channel+mixed",
        "grpc_aio+mixed",
        "sync_channel+mixed",
        "grpc_sync+mixed",
    }
    assert all(
        run["errors"] == 0 and run["requests"] == 80
        for run in figures["runs"]
        if "+" not in run["mode"]
    )
    for pair in ("channel/grpc_aio", "sync_channel/grpc_sync"):
        assert figures["ratios"][pair]["throughput"] > 0
        assert figures["ratios"][pair]["mixed_p99"] > 0
    assert "throughput ratio" in done.stdout
