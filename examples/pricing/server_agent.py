"""A Pricing server with lookaside built in: ``lookaside.BackendAgent``.

Three lines around an ordinary ``grpc.aio`` server: the agent's interceptor
measures load, ``attach`` adds ``grpc.health.v1`` and ORCA, ``start``
registers with the LB and keeps the lease, and a SIGTERM or Ctrl-C
deregisters, drains and stops::

    python server_agent.py --lb 127.0.0.1:50051 --port 50071 --id agent-1
"""

from __future__ import annotations

import argparse
import asyncio

import grpc
import pricing_pb2_grpc
from pricing_logic import QuoteError, quote

from lookaside import BackendAgent


class Pricing(pricing_pb2_grpc.PricingServicer):
    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    async def Quote(self, request, context):
        try:
            return quote(request, self.server_id)
        except QuoteError as error:
            await context.abort(error.code, str(error))


async def main() -> None:
    parser = argparse.ArgumentParser(description="A Pricing server that registers itself.")
    parser.add_argument("--lb", default="127.0.0.1:50051", help="the LB (or a:1,b:2 replicas)")
    parser.add_argument("--port", type=int, default=50071)
    parser.add_argument("--id", default="agent-1", help="backend id, also shown in replies")
    args = parser.parse_args()

    agent = BackendAgent(args.lb, service="pricing", port=args.port, id=args.id, capacity=8)
    server = grpc.aio.server(interceptors=[agent.aio_interceptor])
    pricing_pb2_grpc.add_PricingServicer_to_server(Pricing(args.id), server)
    agent.attach(server)
    server.add_insecure_port(f"127.0.0.1:{args.port}")
    await server.start()
    await agent.start()
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    await agent.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
