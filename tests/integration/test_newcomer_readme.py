"""The README as a newcomer reads it: every Python snippet runs as pasted (against a real
LB and backend, at the test's own port), it names nothing outside the repository and no
issue numbers, and every file it links to exists."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lookaside.client.fleet_status import fetch_status
from tests.integration.harness import Cluster

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# A snippet inside a list item is indented as a whole; it is pasted without that indent.
PYTHON_SNIPPETS = [
    textwrap.dedent(snippet)
    for snippet in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
]
DEFAULT_LB = "127.0.0.1:50051"
SERVER_GRACE = 20.0  # seconds a snippet has to end (a client) or register a backend (a server)


def test_readme_has_python_snippets() -> None:
    assert PYTHON_SNIPPETS


@pytest.mark.parametrize("index", range(len(PYTHON_SNIPPETS)))
def test_python_snippet_runs_as_pasted(cluster: Cluster, tmp_path: Path, index: int) -> None:
    cluster.start_lb()
    cluster.start_backend("backend1")
    cluster.wait_registered({"backend1"})
    snippet = PYTHON_SNIPPETS[index].replace(DEFAULT_LB, cluster.lb_target)
    script = tmp_path / f"snippet{index}.py"
    script.write_text(snippet, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, str(script)], stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:  # a client snippet ends by itself; a server snippet registers, then runs until SIGTERM
        registered = _wait_exit_or_registration(process, cluster)
        if registered:
            process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    finally:
        process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, f"snippet {index}:\n{snippet}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    if registered:  # SIGTERM deregistered what the snippet registered
        assert not registered & _registered(cluster)


def _registered(cluster: Cluster) -> set[str]:
    """``service/id`` of every backend the LB holds, in every service."""
    fleet = asyncio.run(
        fetch_status(cluster.lb_target, token=cluster.admin_token, tls=cluster.admin_tls)
    )
    return {f"{service.name}/{backend.id}" for service in fleet for backend in service.backends}


def _wait_exit_or_registration(process: subprocess.Popen[str], cluster: Cluster) -> set[str]:
    """The ids a server snippet registered with the LB, or an empty set once it has exited."""
    deadline = time.monotonic() + SERVER_GRACE
    while process.poll() is None and time.monotonic() < deadline:
        joined = _registered(cluster) - {"compute/backend1"}
        if joined:
            return joined
        time.sleep(0.1)
    if process.poll() is None:
        raise AssertionError("the snippet neither ended nor registered a backend")
    return set()


def test_readme_names_no_issue_numbers_and_nothing_outside() -> None:
    assert not re.search(r"\bissues? #?\d+", README, flags=re.IGNORECASE)
    assert "../" not in README
    assert "DESIGN.md" not in README


def test_every_linked_file_exists() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)\)", README)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []
