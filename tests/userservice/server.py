"""A stock grpcio server of the Echo service, with grpc.health.v1 and no lookaside code.

``python -m tests.userservice.server --port 0 --id s1`` prints ``listening on
127.0.0.1:PORT`` once it serves. ``SIGUSR1`` flips its health to NOT_SERVING,
``SIGUSR2`` back to SERVING (for tests of health following); SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.userservice import echo_pb2_grpc as pb_grpc
from tests.userservice.servicer import EchoServicer

SERVICE = "userservice.v1.Echo"


async def serve(host: str, port: int, server_id: str) -> None:
    server = aio.server()
    pb_grpc.add_EchoServicer_to_server(EchoServicer(server_id), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE):
        await health_servicer.set(name, serving)
    print(f"listening on {host}:{bound}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    flips: set[asyncio.Task[None]] = set()

    def set_health(status: int) -> None:
        for name in ("", SERVICE):
            task = loop.create_task(health_servicer.set(name, status))
            flips.add(task)
            task.add_done_callback(flips.discard)

    loop.add_signal_handler(signal.SIGUSR1, set_health, not_serving)
    loop.add_signal_handler(signal.SIGUSR2, set_health, serving)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--id", default="echo")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.id))


if __name__ == "__main__":
    main()
