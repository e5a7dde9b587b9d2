"""Bearer-token auth and (mutual) TLS against a real grpc.aio server on loopback.

The server runs the standard health service plus a client-streaming test
method, behind :class:`BearerAuthInterceptor`; certificates are made per test
session by :mod:`tests.certs`. Every call has a deadline, so a regression
fails fast instead of hanging.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from lookaside.security import auth
from lookaside.security.auth import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    BearerAuthInterceptor,
    bearer_metadata,
    with_bearer_token,
)
from lookaside.security.tls import TlsConfig, channel_credentials
from lookaside.security.tokens import Token
from tests.certs import Pki, make_pki

pytestmark = pytest.mark.integration

DEADLINE = 5.0
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
COLLECT = "/lookaside.test.Sink/Collect"
GOOD = Token("the-right-token-0123456789")
WRONG = Token("the-wrong-token-9876543210")
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@dataclass
class Sink:
    """A client-streaming method that counts messages; ``calls`` shows whether it ran."""

    calls: int = 0
    received: list[bytes] = field(default_factory=list)

    async def collect(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        self.calls += 1
        async for request in requests:
            self.received.append(request)
        return str(len(self.received)).encode()


@dataclass
class Running:
    port: int
    sink: Sink

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def serve(
    rules: Mapping[str, Sequence[Token]] | None = None,
    credentials: grpc.ServerCredentials | None = None,
) -> AsyncIterator[Running]:
    """A server on an ephemeral loopback port, stopped on exit."""
    server = grpc.aio.server(interceptors=[BearerAuthInterceptor(rules or {})])
    servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]  # stubs predate aio
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    sink = Sink()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "lookaside.test.Sink",
                {"Collect": grpc.stream_unary_rpc_method_handler(sink.collect)},
            ),
        )
    )
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    assert port > 0
    await server.start()
    try:
        yield Running(port, sink)
    finally:
        await server.stop(grace=None)


def channel(target: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(target)
    return grpc.aio.secure_channel(target, credentials)


async def check(ch: grpc.aio.Channel, token: Token | None = None) -> int:
    """The health status the server reports, sending ``token`` as per-call metadata."""
    stub = health_pb2_grpc.HealthStub(ch)
    reply = await stub.Check(
        health_pb2.HealthCheckRequest(), timeout=DEADLINE, metadata=bearer_metadata(token)
    )
    return int(reply.status)


async def rpc_error(ch: grpc.aio.Channel, token: Token | None = None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await check(ch, token)
    return info.value


# --- bearer tokens on a plaintext server --------------------------------------------------


async def test_no_token_is_unauthenticated() -> None:
    async with serve({CHECK: [GOOD]}) as srv, channel(srv.target) as ch:
        error = await rpc_error(ch)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == MISSING_TOKEN


async def test_wrong_token_is_unauthenticated() -> None:
    async with serve({CHECK: [GOOD]}) as srv, channel(srv.target) as ch:
        error = await rpc_error(ch, WRONG)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == INVALID_TOKEN


async def test_right_token_is_served() -> None:
    async with serve({CHECK: [GOOD]}) as srv, channel(srv.target) as ch:
        assert await check(ch, GOOD) == SERVING


async def test_unguarded_methods_stay_open() -> None:
    async with serve({COLLECT: [GOOD]}) as srv, channel(srv.target) as ch:
        assert await check(ch) == SERVING


async def test_rotation_accepts_either_token() -> None:
    async with serve({CHECK: [GOOD, WRONG]}) as srv, channel(srv.target) as ch:
        assert await check(ch, GOOD) == SERVING
        assert await check(ch, WRONG) == SERVING
        assert (await rpc_error(ch, Token("third"))).code() == grpc.StatusCode.UNAUTHENTICATED


async def test_server_streaming_method_is_guarded() -> None:
    async with serve({WATCH: [GOOD]}) as srv, channel(srv.target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        refused = stub.Watch(health_pb2.HealthCheckRequest(), timeout=DEADLINE)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await refused.read()
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

        allowed = stub.Watch(
            health_pb2.HealthCheckRequest(), timeout=DEADLINE, metadata=bearer_metadata(GOOD)
        )
        first = await allowed.read()
        assert isinstance(first, health_pb2.HealthCheckResponse)
        assert first.status == SERVING
        allowed.cancel()


def _raw(data: bytes) -> bytes:
    return data


async def _messages(*items: bytes) -> AsyncIterator[bytes]:
    for item in items:
        yield item


async def test_client_streaming_refused_before_the_servicer_runs() -> None:
    """A refused stream changes nothing: the servicer is never entered."""
    async with serve({COLLECT: [GOOD]}) as srv, channel(srv.target) as ch:
        collect = ch.stream_unary(COLLECT, _raw, _raw)
        for token, reason in ((None, MISSING_TOKEN), (WRONG, INVALID_TOKEN)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await collect(
                    _messages(b"a", b"b"), timeout=DEADLINE, metadata=bearer_metadata(token)
                )
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert info.value.details() == reason
        assert srv.sink.calls == 0
        assert srv.sink.received == []

        reply = await collect(
            _messages(b"a", b"b", b"c"), timeout=DEADLINE, metadata=bearer_metadata(GOOD)
        )
        assert reply == b"3"
        assert srv.sink.calls == 1


async def test_refusals_are_logged_without_tokens(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=auth.__name__):
        async with serve({CHECK: [GOOD]}) as srv, channel(srv.target) as ch:
            await rpc_error(ch, WRONG)
            await rpc_error(ch)
    refusals = [r.getMessage() for r in caplog.records if "auth refused" in r.getMessage()]
    assert len(refusals) == 2
    assert f"method={CHECK}" in refusals[0]
    assert f"reason={INVALID_TOKEN}" in refusals[0]
    assert f"reason={MISSING_TOKEN}" in refusals[1]
    assert GOOD.reveal() not in caplog.text
    assert WRONG.reveal() not in caplog.text


# --- TLS -----------------------------------------------------------------------------------


def _tls_server(pki: Pki, *, mutual: bool = False) -> grpc.ServerCredentials:
    config = TlsConfig(
        cert=pki.server_cert, key=pki.server_key, client_ca=pki.ca_cert if mutual else None
    )
    credentials = config.server_credentials()
    assert credentials is not None
    return credentials


async def test_tls_client_trusting_the_ca_is_served(pki: Pki) -> None:
    credentials = TlsConfig(ca=pki.ca_cert).channel_credentials()
    async with serve(credentials=_tls_server(pki)) as srv:
        async with channel(srv.target, credentials) as ch:
            assert await check(ch) == SERVING
        async with channel(f"localhost:{srv.port}", credentials) as ch:
            assert await check(ch) == SERVING  # DNS SAN as well as IP SAN


async def test_plaintext_client_is_refused_by_tls_server(pki: Pki) -> None:
    async with serve(credentials=_tls_server(pki)) as srv, channel(srv.target) as ch:
        assert (await rpc_error(ch)).code() == grpc.StatusCode.UNAVAILABLE


async def test_client_trusting_another_ca_is_refused(pki: Pki) -> None:
    async with (
        serve(credentials=_tls_server(pki)) as srv,
        channel(srv.target, channel_credentials(pki.other_ca_cert)) as ch,
    ):
        assert (await rpc_error(ch)).code() == grpc.StatusCode.UNAVAILABLE


async def test_tls_client_cannot_reach_plaintext_server(pki: Pki) -> None:
    """A client configured for TLS never silently falls back to plaintext."""
    async with serve() as srv, channel(srv.target, channel_credentials(pki.ca_cert)) as ch:
        assert (await rpc_error(ch)).code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_client_without_certificate(pki: Pki) -> None:
    async with (
        serve(credentials=_tls_server(pki, mutual=True)) as srv,
        channel(srv.target, channel_credentials(pki.ca_cert)) as ch,
    ):
        assert (await rpc_error(ch)).code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_refuses_certificate_from_another_ca(pki: Pki) -> None:
    stranger = channel_credentials(pki.ca_cert, pki.other_client_cert, pki.other_client_key)
    async with (
        serve(credentials=_tls_server(pki, mutual=True)) as srv,
        channel(srv.target, stranger) as ch,
    ):
        assert (await rpc_error(ch)).code() == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls_serves_client_with_certificate(pki: Pki) -> None:
    client = TlsConfig(cert=pki.client_cert, key=pki.client_key, ca=pki.ca_cert)
    credentials = client.channel_credentials()
    assert credentials is not None
    async with (
        serve(credentials=_tls_server(pki, mutual=True)) as srv,
        channel(srv.target, credentials) as ch,
    ):
        assert await check(ch) == SERVING


# --- TLS and tokens together ---------------------------------------------------------------


async def test_call_credentials_carry_the_token_over_tls(pki: Pki) -> None:
    """with_bearer_token (gRPC's access-token credentials) speaks the interceptor's format."""
    async with serve({CHECK: [GOOD]}, _tls_server(pki)) as srv:
        good = with_bearer_token(channel_credentials(pki.ca_cert), GOOD)
        async with channel(srv.target, good) as ch:
            assert await check(ch) == SERVING
        wrong = with_bearer_token(channel_credentials(pki.ca_cert), WRONG)
        async with channel(srv.target, wrong) as ch:
            error = await rpc_error(ch)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error.details() == INVALID_TOKEN
