"""Start ``lookaside`` servers as real child processes, and never leave orphans.

Used by the demo, the scale tools, the benchmark lab and the integration
tests. Each child logs to its own file; readiness is the ``listening on
HOST:PORT`` line the servers log once their health service says SERVING.
On Linux every child gets ``PR_SET_PDEATHSIG`` = SIGTERM, so it shuts down
cleanly even when the parent is killed with SIGKILL. (The kernel's "parent" is
the *thread* that started the child: start children from a thread that lives
as long as they should.)

The child sets that itself, first thing, from a short ``python -c`` prologue
(:data:`CHILD_PROLOGUE`), rather than in a ``preexec_fn``: a ``preexec_fn``
runs Python between ``fork`` and ``exec`` in a copy of a process whose other
threads (gRPC's, a load generator's) may hold locks, and such children
crashed with SIGSEGV now and then when started while the parent was busy.
Without it, ``subprocess`` starts children with ``vfork``/``exec`` only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

LISTENING = re.compile(r"listening on (\S+):(\d+)")
PR_SET_PDEATHSIG = 1


def lookaside_command() -> list[str]:
    return [sys.executable, "-m", "lookaside"]


#: Run as ``python -c CHILD_PROLOGUE PARENT_PID ARGS...``: die with the parent, then
#: run ``lookaside ARGS...``.
CHILD_PROLOGUE = (
    "import sys\n"
    "from lookaside.procs import die_with_parent\n"
    "die_with_parent(int(sys.argv.pop(1)))\n"
    "from lookaside.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def child_command(args: Sequence[str]) -> list[str]:
    """``lookaside ARGS...`` as a child that is SIGTERMed when this process dies (Linux)."""
    if sys.platform != "linux":
        return [*lookaside_command(), *args]
    return [sys.executable, "-c", CHILD_PROLOGUE, str(os.getpid()), *args]


def die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in the child
    """Ask the kernel to SIGTERM this process when its parent dies (Linux only).

    If the parent died before we asked, no signal would ever come: exit now.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        sys.exit(128 + signal.SIGTERM)


class ServerProcess:
    """One ``lookaside <subcommand>`` child process."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env or {})  # added to this process's environment (e.g. a token)
        self.log_path = Path(log_dir) / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.port = 0

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def start(self) -> ServerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            )
        return self

    def command(self) -> list[str]:
        """The child's command line: ``lookaside ARGS...`` (a subclass may run another)."""
        return child_command(self.args)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_bytes()[self._log_offset :].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_listening(self, timeout: float = 30.0) -> int:
        """Block until the server logs its address; return its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_text())
            if match:
                self.port = int(match.group(2))
                return self.port
            if not self.alive():
                code = self._proc.returncode if self._proc is not None else None
                raise RuntimeError(
                    f"{self.name} exited early (code {code}):\n{self.log_text()[-2000:]}"
                )
            time.sleep(0.02)
        raise TimeoutError(
            f"{self.name} not listening after {timeout}s:\n{self.log_text()[-2000:]}"
        )

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            assert self._proc is not None
            self._proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self._proc is None:
            return None
        self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill()
            code = self.wait(5.0)
        return code

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(5.0)


def stop_all(processes: Sequence[ServerProcess], timeout: float = 10.0) -> None:
    """SIGTERM every process at once, then wait for each (SIGKILL stragglers)."""
    for process in processes:
        process.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        if process.wait(max(0.1, deadline - time.monotonic())) is None:
            process.kill()
