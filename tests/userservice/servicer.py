"""The Echo service's behaviour, shared by the plain server and the agent tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from tests.userservice import echo_pb2 as pb
from tests.userservice import echo_pb2_grpc as pb_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class EchoServicer(pb_grpc.EchoServicer):
    def __init__(self, server_id: str) -> None:
        self.server_id = server_id

    def _reply(self, text: str) -> pb.EchoReply:
        return pb.EchoReply(text=text, served_by=self.server_id)

    async def _prepare(self, request: pb.EchoRequest, context: Context) -> None:
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.fail_code:
            await context.abort(status_code(request.fail_code), f"asked to fail: {request.text}")

    async def Say(self, request: pb.EchoRequest, context: Context) -> pb.EchoReply:
        await self._prepare(request, context)
        return self._reply(request.text)

    async def Count(self, request: pb.EchoRequest, context: Context) -> AsyncIterator[pb.EchoReply]:
        await self._prepare(request, context)
        for i in range(request.count):
            yield self._reply(f"{request.text}-{i}")

    async def Gather(
        self, request_iterator: AsyncIterator[pb.EchoRequest], context: Context
    ) -> pb.EchoReply:
        texts = [request.text async for request in request_iterator]
        return self._reply("+".join(texts))

    async def Chat(
        self, request_iterator: AsyncIterator[pb.EchoRequest], context: Context
    ) -> AsyncIterator[pb.EchoReply]:
        async for request in request_iterator:
            await self._prepare(request, context)
            yield self._reply(request.text)


def status_code(number: int) -> grpc.StatusCode:
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    raise ValueError(f"no gRPC status code {number}")
