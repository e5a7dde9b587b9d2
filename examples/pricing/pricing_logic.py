"""The example's business logic: a price list. Shared by both example servers."""

from __future__ import annotations

import grpc
import pricing_pb2

PRICES_CENTS = {"apple": 45, "pear": 60, "fig": 120}


class QuoteError(Exception):
    """A request the price list cannot answer; the server turns it into a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def quote(request: pricing_pb2.QuoteRequest, server_id: str) -> pricing_pb2.QuoteReply:
    price = PRICES_CENTS.get(request.sku)
    if price is None:
        raise QuoteError(grpc.StatusCode.NOT_FOUND, f"unknown sku {request.sku!r}")
    if request.quantity < 1:
        raise QuoteError(grpc.StatusCode.INVALID_ARGUMENT, "quantity must be at least 1")
    return pricing_pb2.QuoteReply(
        sku=request.sku, total_cents=price * request.quantity, priced_by=server_id
    )
