"""The README as a newcomer reads it: every Python snippet runs as pasted (against a real
LB and backend, at the test's own port), it names nothing outside the repository and no
issue numbers, and every file it links to exists."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration.harness import Cluster

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
# A snippet inside a list item is indented as a whole; it is pasted without that indent.
PYTHON_SNIPPETS = [
    textwrap.dedent(snippet)
    for snippet in re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
]
DEFAULT_LB = "127.0.0.1:50051"
SERVER_GRACE = 20.0  # seconds a snippet may run before it is taken for a server


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
    try:  # a client snippet ends by itself; a server snippet runs until SIGTERM
        code = process.wait(SERVER_GRACE)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    finally:
        process.kill()
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 0, f"snippet {index}:\n{snippet}\n{stderr}"
    assert "Traceback" not in stderr, stderr


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
