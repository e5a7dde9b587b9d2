"""The Echo service behind ``lookaside.BackendAgent``, as a user would write it.

``python -m tests.integration.agent_echo --lb HOST:PORT --id e1 --mode aio|sync``
serves Echo on a free port through a ``grpc.aio`` or a blocking ``grpc.Server``
and prints ``listening on 127.0.0.1:PORT`` once registered. ``SIGUSR1`` sets
its health NOT_SERVING, ``SIGUSR2`` SERVING again; SIGTERM stops it through the
agent (deregister, drain, calls in flight finish), exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2

from lookaside import BackendAgent
from tests.userservice import echo_pb2 as pb
from tests.userservice import echo_pb2_grpc as pb_grpc
from tests.userservice.servicer import EchoServicer, status_code

SERVICE = "userservice.v1.Echo"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class BlockingEcho(pb_grpc.EchoServicer):
    """Echo for a blocking server: the same behaviour as :class:`EchoServicer`."""

    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    def _reply(self, text: str) -> pb.EchoReply:
        return pb.EchoReply(text=text, served_by=self.server_id)

    def _prepare(self, request: pb.EchoRequest, context: grpc.ServicerContext) -> None:
        if request.delay_ms:
            time.sleep(request.delay_ms / 1000)
        if request.fail_code:
            context.abort(status_code(request.fail_code), f"asked to fail: {request.text}")

    def Say(self, request: pb.EchoRequest, context: grpc.ServicerContext) -> pb.EchoReply:
        self._prepare(request, context)
        return self._reply(request.text)

    def Count(self, request: pb.EchoRequest, context: grpc.ServicerContext) -> Iterator[Any]:
        self._prepare(request, context)
        for i in range(request.count):
            yield self._reply(f"{request.text}-{i}")

    def Gather(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Any:
        return self._reply("+".join(request.text for request in request_iterator))

    def Chat(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        for request in request_iterator:
            self._prepare(request, context)
            yield self._reply(request.text)


def new_agent(args: argparse.Namespace) -> BackendAgent:
    return BackendAgent(
        args.lb,
        service=args.service,
        port=0,
        id=args.id,
        capacity=4,
        report_interval=0.3,
        drain_seconds=0.3,
        orca_min_interval=0.2,
    )


async def serve_aio(args: argparse.Namespace) -> None:
    agent = new_agent(args)
    server = aio.server(interceptors=[agent.aio_interceptor])
    pb_grpc.add_EchoServicer_to_server(EchoServicer(args.id), server)
    agent.attach(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await agent.start(port)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()

    def set_health(status: int) -> None:
        task = loop.create_task(agent.health.set("", status))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGUSR1, set_health, NOT_SERVING)
    loop.add_signal_handler(signal.SIGUSR2, set_health, SERVING)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await agent.stop()


def serve_sync(args: argparse.Namespace) -> None:
    agent = new_agent(args)
    server = grpc.server(ThreadPoolExecutor(8), interceptors=[agent.sync_interceptor])
    pb_grpc.add_EchoServicer_to_server(BlockingEcho(args.id), server)
    agent.attach(server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    agent.start_sync(port)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: agent.health.set("", NOT_SERVING))
    signal.signal(signal.SIGUSR2, lambda *_: agent.health.set("", SERVING))
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    agent.stop_sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lb", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--service", default=SERVICE)
    parser.add_argument("--mode", choices=["aio", "sync"], default="aio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.mode == "aio":
        asyncio.run(serve_aio(args))
    else:
        serve_sync(args)


if __name__ == "__main__":
    main()
