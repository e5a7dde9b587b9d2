"""Processes and calls for the tests of user services behind lookaside (agent, sidecar).

:class:`ModuleProcess` runs ``python -m MODULE ARGS`` (the user-style Echo
servers) as a child that dies with the test process, logging like the
``lookaside`` children. The helpers ask the LB with plain generated stubs.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import grpc
import pytest

from lookaside.procs import ServerProcess
from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc
from tests.integration.harness import Cluster
from tests.userservice import echo_pb2 as echo_pb
from tests.userservice import echo_pb2_grpc as echo_grpc

ECHO = "userservice.v1.Echo"
REPO_ROOT = Path(__file__).resolve().parents[2]
#: A health flip is reported at once; the design bound is 1 s (about 0.05 s measured).
#: The tests allow slack for a loaded machine.
FLIP_TIMEOUT = 3.0

#: ``python -c MODULE_PROLOGUE PARENT_PID MODULE ARGS...``: die with the parent, run MODULE.
MODULE_PROLOGUE = (
    "import runpy, sys\n"
    "from lookaside.procs import die_with_parent\n"
    "die_with_parent(int(sys.argv.pop(1)))\n"
    "module = sys.argv.pop(1)\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)


class ModuleProcess(ServerProcess):
    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        super().__init__(name, args, log_dir, {"PYTHONPATH": path, **(env or {})})
        self.module = module

    def command(self) -> list[str]:
        return [sys.executable, "-c", MODULE_PROLOGUE, str(os.getpid()), self.module, *self.args]


def echo_server(name: str, log_dir: Path) -> ModuleProcess:
    """A stock grpcio Echo server with health and no lookaside code, listening."""
    process = ModuleProcess(name, "tests.userservice.server", ["--id", name], log_dir).start()
    process.wait_listening()
    return process


def agent_echo(
    name: str, lb_target: str, log_dir: Path, mode: str = "aio", service: str = ECHO
) -> ModuleProcess:
    """Echo behind ``lookaside.BackendAgent`` (``mode`` aio or sync), registered."""
    args = ["--lb", lb_target, "--id", name, "--mode", mode, "--service", service]
    process = ModuleProcess(name, "tests.integration.agent_echo", args, log_dir).start()
    process.wait_listening()
    return process


def lb_stub(channel: grpc.Channel) -> pb_grpc.LoadBalancerStub:
    return pb_grpc.LoadBalancerStub(channel)


def backends(lb: pb_grpc.LoadBalancerStub, service: str = ECHO) -> dict[str, pb.BackendInfo]:
    reply = lb.ListBackends(pb.ListBackendsRequest(service_name=service), timeout=2)
    return {b.id: b for b in reply.backends}


def pick(lb: pb_grpc.LoadBalancerStub, service: str = ECHO) -> pb.BackendInfo | None:
    """GetBackend's answer, or None when the LB has no backend to hand out."""
    try:
        return lb.GetBackend(pb.ServerRequest(client_id="t", service_name=service), timeout=2)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.UNAVAILABLE:  # type: ignore[attr-defined]
            return None
        raise


def serving_state(lb: pb_grpc.LoadBalancerStub, backend_id: str, service: str = ECHO) -> int:
    info = backends(lb, service).get(backend_id)
    return -1 if info is None else info.serving_state


def echo_stub(channel: grpc.Channel) -> echo_grpc.EchoStub:
    return echo_grpc.EchoStub(channel)


def say(target: str, text: str = "hi", **fields: int) -> echo_pb.EchoReply:
    with grpc.insecure_channel(target) as channel:
        return echo_stub(channel).Say(echo_pb.EchoRequest(text=text, **fields), timeout=10)


@pytest.fixture
def lb(cluster: Cluster) -> Iterator[grpc.Channel]:
    """An LB process (round_robin, short leases) and a blocking channel to it."""
    cluster.start_lb("round_robin")
    with grpc.insecure_channel(cluster.lb_target) as channel:
        yield channel


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """:func:`~tests.integration.harness.wait_until` for coroutines."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)
