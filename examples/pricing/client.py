"""A Pricing client: the generated stub, on a channel that lookaside balances.

``lookaside.sync_channel`` stands wherever a blocking ``grpc.Channel`` does
(``lookaside.channel`` is the ``grpc.aio`` one). Each call goes to the backend
the LB's policy picks; the code is the same as against a single server::

    python client.py --lb 127.0.0.1:50051 apple 3
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import grpc
import pricing_pb2
import pricing_pb2_grpc

import lookaside


def main() -> int:
    parser = argparse.ArgumentParser(description="Ask the Pricing service for quotes.")
    parser.add_argument("--lb", default="127.0.0.1:50051", help="the LB (or a:1,b:2 replicas)")
    parser.add_argument("--calls", type=int, default=6, help="how many quotes to ask for")
    parser.add_argument("sku", nargs="?", default="apple")
    parser.add_argument("quantity", nargs="?", type=int, default=1)
    args = parser.parse_args()

    served_by: Counter[str] = Counter()
    with lookaside.sync_channel(args.lb, "pricing") as channel:
        stub = pricing_pb2_grpc.PricingStub(channel)
        request = pricing_pb2.QuoteRequest(sku=args.sku, quantity=args.quantity)
        for _ in range(args.calls):
            try:
                reply = stub.Quote(request, timeout=5)
            except grpc.RpcError as error:
                print(f"error: {error.code().name}: {error.details()}", file=sys.stderr)
                return 1
            served_by[reply.priced_by] += 1
    print(f"{args.quantity} x {args.sku} = {reply.total_cents / 100:.2f}")
    for server, calls in sorted(served_by.items()):
        print(f"  {calls} call(s) priced by {server}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
