"""``--lb a:1,b:2``: when the LB replica a sidecar reports to dies, it registers with the next.

Replicas here are independent LBs (no shared store): the test checks the
reporter's side, that a broken load stream sends it to the next replica.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from lookaside.procs import ServerProcess
from tests.integration.harness import FAST_LEASES, wait_until
from tests.integration.userprocs import ECHO, backends, echo_server, lb_stub


def start_lb(name: str, log_dir: Path) -> ServerProcess:
    process = ServerProcess(name, ["lb", "--port", "0", *FAST_LEASES], log_dir).start()
    process.wait_listening()
    return process


def registered_at(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            return "s1" in backends(lb_stub(channel), ECHO)
        except grpc.RpcError:
            return False


def test_the_sidecar_moves_to_the_next_replica(tmp_path: Path) -> None:
    first, second = start_lb("lb-a", tmp_path), start_lb("lb-b", tmp_path)
    target = echo_server("s1", tmp_path)
    lbs = f"127.0.0.1:{first.port},127.0.0.1:{second.port}"
    args = [
        "agent",
        "--lb",
        lbs,
        "--target",
        f"127.0.0.1:{target.port}",
        "--service",
        ECHO,
        "--id",
        "s1",
        "--report-interval",
        "0.3",
    ]
    sidecar = ServerProcess("sidecar", args, tmp_path).start()
    try:
        wait_until(
            lambda: registered_at(first.port) or registered_at(second.port), 20, "a registration"
        )
        used, spare = (first, second) if registered_at(first.port) else (second, first)
        used.kill()
        wait_until(lambda: registered_at(spare.port), 20, "registration with the other replica")
        assert sidecar.alive()
    finally:
        for process in (sidecar, target, first, second):
            process.stop()
