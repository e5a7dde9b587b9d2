"""A user-style backend for ``lookaside bench-channel``: one no-op unary method.

``python -m lookaside.bench.noop_server --lb HOST:PORT --id ID`` serves
``/bench.v1.Noop/Ping`` (answers the request bytes as they came, no protobuf),
registers with the LB as service ``noop`` and keeps its lease until SIGTERM.
It prints ``listening on HOST:PORT`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc import aio

from lookaside.backend.reporter import LoadReporter
from lookaside.channels import dial
from lookaside.v1 import load_balancer_pb2 as pb

SERVICE = "noop"
METHOD = "/bench.v1.Noop/Ping"
REPORT_INTERVAL = 1.0


async def _ping(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    return request


async def serve(lb_target: str, backend_id: str, host: str) -> None:
    server = aio.server()
    handler = grpc.method_handlers_generic_handler(
        "bench.v1.Noop", {"Ping": grpc.unary_unary_rpc_method_handler(_ping)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    print(f"listening on {host}:{port}", flush=True)
    lb = dial(lb_target)
    registration = pb.BackendInfo(id=backend_id, address=host, port=port, service_name=SERVICE)
    reporter = LoadReporter(
        lb, registration, lambda: pb.LoadReport(id=backend_id), interval=REPORT_INTERVAL
    )
    reporter.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await reporter.stop()
    await server.stop(0.5)
    await lb.close(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lb", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    asyncio.run(serve(args.lb, args.id, args.host))


if __name__ == "__main__":
    main()
