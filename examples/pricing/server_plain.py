"""A stock grpcio server of the Pricing service: no lookaside code at all.

This is what a server in any language looks like to lookaside. It serves
``grpc.health.v1`` (as most production servers do) so that the sidecar,
``lookaside agent``, can follow its health. Run it, then put it behind the
LB with the sidecar::

    python server_plain.py --port 50061 --id plain-1
    lookaside agent --lb 127.0.0.1:50051 --target 127.0.0.1:50061 --service pricing
"""

from __future__ import annotations

import argparse
import signal
from concurrent import futures

import grpc
import pricing_pb2_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pricing_logic import QuoteError, quote


class Pricing(pricing_pb2_grpc.PricingServicer):
    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    def Quote(self, request, context):
        try:
            return quote(request, self.server_id)
        except QuoteError as error:
            context.abort(error.code, str(error))


def main() -> None:
    parser = argparse.ArgumentParser(description="A plain Pricing server (no lookaside code).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50061)
    parser.add_argument("--id", default="plain-1", help="name shown in replies")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pricing_pb2_grpc.add_PricingServicer_to_server(Pricing(args.id), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    for name in ("", "pricing.v1.Pricing"):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    print(f"listening on {args.host}:{port}", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: server.stop(1.0))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
