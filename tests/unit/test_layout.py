"""The layout rules that a static import check cannot see.

``lint-imports`` (``make lint``) checks the import graph; the CLI loads its
subcommands dynamically, so whether ``lookaside lb`` pulls in the bench's
plotting and console libraries is checked here, in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from lookaside.cli import build_parser
args = build_parser({argv!r}).parse_args({argv!r})
import lookaside.lb.server
heavy = sorted(m for m in ("matplotlib", "rich") if m in sys.modules)
print(",".join(heavy))
"""


@pytest.mark.parametrize("argv", [["lb", "--port", "0"], ["backend"], ["client", "hi"]])
def test_serving_commands_load_no_plotting_or_console_library(argv: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "", f"lookaside {argv[0]} imported {out.stdout.strip()}"


def test_bench_command_still_loads_its_libraries() -> None:
    """The probe above can fail: the bench command does import rich."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=["bench", "--quick"])],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "rich" in out.stdout
