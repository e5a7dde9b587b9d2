"""Bearer-token authentication for the LB's RPCs: a server interceptor and client helpers.

Who may call what (the threat model in short):

* **Backend token** (``--auth-token-file``) guards *membership*: RegisterBackend,
  ReportLoad, StreamLoad, Deregister. Whoever holds it can add backends and
  steer their load figures, so only backends get it.
* **Client token** (``--client-token-file``) guards *selection and feedback*:
  GetBackend and ListBackends (both reveal backend addresses) and
  ReportClientStats (clients send it; its failure counts feed outlier ejection,
  so an anonymous caller could otherwise eject healthy backends).
* Health (``grpc.health.v1``) and reflection stay open: readiness probes and
  tooling must work without secrets, and they reveal nothing about backends.

A token that is not configured leaves its group open. A rejected call never
reaches the servicer (so it changes nothing) and is answered ``UNAUTHENTICATED``
with "missing bearer token" or "invalid bearer token". Tokens are never logged.

On the client side, gRPC refuses call credentials on plaintext channels, so
:func:`bearer_metadata` gives the metadata to pass per call; on TLS channels
:func:`with_bearer_token` attaches the token to every call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import grpc
import grpc.aio

from lookaside.security.tokens import AuthTokens, Token

__all__ = [
    "BACKEND_METHODS",
    "CLIENT_METHODS",
    "INVALID_TOKEN",
    "LB_SERVICE",
    "MISSING_TOKEN",
    "BearerAuthInterceptor",
    "bearer_call_credentials",
    "bearer_metadata",
    "check_bearer",
    "lb_auth_rules",
    "with_bearer_token",
]

LB_SERVICE: Final = "lookaside.v1.LoadBalancer"

BACKEND_METHODS: Final = tuple(
    f"/{LB_SERVICE}/{name}"
    for name in ("RegisterBackend", "ReportLoad", "StreamLoad", "Deregister")
)
"""Full method names guarded by the backend token: they change membership or load."""

CLIENT_METHODS: Final = tuple(
    f"/{LB_SERVICE}/{name}"
    for name in (
        "GetBackend",
        "ListBackends",
        "ReportClientStats",
        "WatchBackends",
        "ListServices",
    )
)
"""Full method names guarded by the client token: selection, listing, client feedback,
and the fast path's subscription (it reveals backend addresses like GetBackend)."""

MISSING_TOKEN: Final = "missing bearer token"
INVALID_TOKEN: Final = "invalid bearer token"

_AUTHORIZATION: Final = "authorization"
_SCHEME: Final = "bearer"

log = logging.getLogger(__name__)

Rules = Mapping[str, Collection[Token]]
"""Full method name -> tokens any one of which is accepted (several allow rotation)."""

if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor
    _Handler = grpc.RpcMethodHandler


def lb_auth_rules(tokens: AuthTokens) -> dict[str, tuple[Token, ...]]:
    """The LB's rules: membership RPCs need the backend token, client RPCs the client token."""
    rules: dict[str, tuple[Token, ...]] = {}
    if tokens.backend is not None:
        rules.update(dict.fromkeys(BACKEND_METHODS, (tokens.backend,)))
    if tokens.client is not None:
        rules.update(dict.fromkeys(CLIENT_METHODS, (tokens.client,)))
    return rules


def check_bearer(
    metadata: Sequence[tuple[str, str | bytes]] | None, accepted: Collection[Token]
) -> str | None:
    """``None`` if the metadata carries one accepted bearer token, else the reason to refuse.

    Every accepted token is compared (no early exit), each in constant time.
    """
    values = [value for key, value in metadata or () if key.lower() == _AUTHORIZATION]
    if not values:
        return MISSING_TOKEN
    if len(values) > 1:
        return INVALID_TOKEN  # ambiguous: which one would a proxy or a log have seen?
    value = values[0]
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    scheme, _, presented = text.strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != _SCHEME or not presented:
        return MISSING_TOKEN
    matched = False
    for token in accepted:
        matched |= token.matches(presented)
    return None if matched else INVALID_TOKEN


class BearerAuthInterceptor(_Interceptor):
    """Refuses calls to guarded methods that lack an accepted ``authorization: Bearer`` token.

    The check runs on the call's metadata before any request message is read,
    so it works the same for unary and streaming methods, and a refused stream
    is not consumed. Methods absent from ``rules`` (or with no tokens) pass.
    """

    def __init__(self, rules: Rules) -> None:
        self._rules = {method: tuple(tokens) for method, tokens in rules.items() if tokens}

    @property
    def guarded_methods(self) -> frozenset[str]:
        return frozenset(self._rules)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        method = handler_call_details.method
        accepted = self._rules.get(method)
        if accepted is None:
            return await continuation(handler_call_details)
        reason = check_bearer(handler_call_details.invocation_metadata, accepted)
        handler = await continuation(handler_call_details)
        if reason is None or handler is None:
            return handler  # no handler: gRPC answers UNIMPLEMENTED as usual
        return _refusing_handler(handler, method, reason)


def _refusing_handler(handler: _Handler, method: str, reason: str) -> _Handler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED.

    No deserializer: a refused caller's bytes are never parsed.
    """

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        log.warning("auth refused method=%s peer=%s reason=%s", method, context.peer(), reason)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


def bearer_metadata(token: Token | None) -> tuple[tuple[str, str], ...]:
    """Per-call metadata carrying ``token`` (empty when ``None``); works on any channel."""
    if token is None:
        return ()
    return ((_AUTHORIZATION, f"Bearer {token.reveal()}"),)


def bearer_call_credentials(token: Token) -> grpc.CallCredentials:
    """Call credentials sending ``authorization: Bearer <token>``; gRPC allows them only on TLS."""
    return grpc.access_token_call_credentials(token.reveal())


def with_bearer_token(
    channel_credentials: grpc.ChannelCredentials, token: Token | None
) -> grpc.ChannelCredentials:
    """TLS channel credentials that also send ``token`` on every call (unchanged if ``None``)."""
    if token is None:
        return channel_credentials
    return grpc.composite_channel_credentials(channel_credentials, bearer_call_credentials(token))
