"""The Aggregated Discovery Service, state of the world: what each stream has asked for and got.

The protocol (Envoy's xDS REST/gRPC protocol, as gRPC clients use it, gRFC A27):

* a client subscribes per resource type by listing names; each response for
  that type carries the type's version and a fresh nonce, and lists every
  subscribed resource that exists (for Listener and Cluster an absent one
  means "does not exist", so they are always listed whole);
* the client answers each response with the same nonce: an ACK carries the
  version it now uses, a NACK carries ``error_detail`` and the last version it
  accepted. A NACK is logged with the client's detail; the stream is not sent
  the rejected resources again, so the client keeps its last good version
  until something actually changes;
* a request whose nonce is not the latest sent for its type answers an older
  response and is ignored (the client will answer the newer one too);
* wildcard: an empty first Listener or Cluster request, or the name ``*``,
  subscribes to every resource of the type.

:class:`AdsStream` holds one stream's state without any I/O (unit-tested
without sockets); :class:`AggregatedDiscoveryService` is the gRPC servicer
that feeds it requests and writes what it says is due.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from grpc import aio

from lookaside.lb.xds import resources
from lookaside.lb.xds.lrs import LRS_METHOD
from lookaside.lb.xds.publisher import Publisher
from lookaside.security import AuthTokens, Token

log = logging.getLogger(__name__)

ADS_SERVICE = "envoy.service.discovery.v3.AggregatedDiscoveryService"
ADS_METHOD = f"/{ADS_SERVICE}/StreamAggregatedResources"
WILDCARD = "*"
_WILDCARD_TYPES = frozenset({resources.LISTENER, resources.CLUSTER})


@dataclass(slots=True)
class TypeState:
    """One resource type on one stream."""

    names: frozenset[str] | None = frozenset()  # None = every resource of the type
    requested: bool = False
    must_answer: bool = False  # the subscription changed since the last response
    nonce: str = ""
    sent_version: str = ""
    sent: frozenset[tuple[str, int]] | None = None  # (name, serial) last sent
    acked_version: str = ""
    nack: str = ""  # the client's error detail for the last rejected response


class AdsObserver(Protocol):
    """What the ADS server tells the LB's metrics: streams, pushes and NACKs by type."""

    def stream_opened(self) -> None: ...
    def stream_closed(self) -> None: ...
    def pushed(self, type_name: str) -> None: ...
    def nacked(self, type_name: str) -> None: ...


class _Unobserved:
    def stream_opened(self) -> None:
        pass

    def stream_closed(self) -> None:
        pass

    def pushed(self, type_name: str) -> None:
        pass

    def nacked(self, type_name: str) -> None:
        pass


def type_name(type_url: str) -> str:
    """``listener``, ``cluster``, ``route`` or ``endpoint`` for a v3 resource type URL."""
    short = type_url.rsplit(".", 1)[-1]
    return {"ClusterLoadAssignment": "endpoint", "RouteConfiguration": "route"}.get(
        short, short.lower()
    )


class AdsStream:
    """One client's ADS stream: subscriptions, nonces, ACKs and NACKs."""

    def __init__(
        self, publisher: Publisher, peer: str = "", observer: AdsObserver | None = None
    ) -> None:
        self.observer: AdsObserver = observer or _Unobserved()
        self.peer = peer
        self.node_id = ""
        self.types: dict[str, TypeState] = {}
        self._publisher = publisher
        self._nonces = itertools.count(1)
        self._ignored: set[str] = set()  # unsupported types, logged once each

    def receive(self, request: discovery_pb2.DiscoveryRequest) -> None:
        if request.node.id:
            self.node_id = request.node.id
        type_url = request.type_url
        if type_url not in resources.TYPES:
            if type_url in self._ignored or len(self._ignored) >= 16:
                return
            self._ignored.add(type_url)
            log.warning(
                "xds ignoring type node=%s peer=%s type=%s: not served",
                self.node_id,
                self.peer,
                type_url,
            )
            return
        state = self.types.setdefault(type_url, TypeState())
        if request.response_nonce:
            if request.response_nonce != state.nonce:
                return  # answers an older response
            self._acknowledge(type_url, state, request)
        names = self._subscription(type_url, state, request.resource_names)
        if not state.requested or names != state.names:
            if type_url == resources.LOAD_ASSIGNMENT:
                if state.requested:
                    self._publisher.unwatch(state.names)
                self._publisher.watch(names)
            state.names, state.must_answer = names, True
        state.requested = True

    def close(self) -> None:
        """The stream ended: its assignments are no longer watched."""
        state = self.types.get(resources.LOAD_ASSIGNMENT)
        if state is not None and state.requested:
            self._publisher.unwatch(state.names)
            state.requested = False

    def _acknowledge(
        self, type_url: str, state: TypeState, request: discovery_pb2.DiscoveryRequest
    ) -> None:
        if request.HasField("error_detail"):
            state.nack = request.error_detail.message or f"code {request.error_detail.code}"
            self.observer.nacked(type_name(type_url))
            log.warning(
                "xds NACK node=%s peer=%s type=%s rejected=%s keeps=%s detail=%s",
                self.node_id,
                self.peer,
                type_url.rsplit(".", 1)[-1],
                state.sent_version,
                request.version_info or "none",
                state.nack,
            )
            return
        state.acked_version, state.nack = request.version_info, ""

    @staticmethod
    def _subscription(type_url: str, state: TypeState, names: Any) -> frozenset[str] | None:
        wanted = frozenset(names)
        if WILDCARD in wanted:
            return None
        if (
            not wanted
            and type_url in _WILDCARD_TYPES
            and (not state.requested or state.names is None)
        ):
            return None  # legacy wildcard: empty from the start
        return wanted

    def responses(self) -> list[discovery_pb2.DiscoveryResponse]:
        """What must be sent now: per type, when its subscribed resources changed."""
        due = []
        for type_url in resources.TYPES:
            state = self.types.get(type_url)
            if state is None or not state.requested:
                continue
            view = self._publisher.view(type_url, state.names)
            sent = frozenset((name, r.serial) for name, r in view.items())
            if not state.must_answer and sent == state.sent:
                continue
            state.must_answer, state.sent = False, sent
            state.nonce = str(next(self._nonces))
            state.sent_version = self._publisher.version(type_url)
            self.observer.pushed(type_name(type_url))
            due.append(
                discovery_pb2.DiscoveryResponse(
                    version_info=state.sent_version,
                    type_url=type_url,
                    nonce=state.nonce,
                    resources=[view[name].body for name in sorted(view)],
                )
            )
        return due


class AggregatedDiscoveryService(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    """``StreamAggregatedResources``: a reader task feeds the stream, the handler writes."""

    def __init__(self, publisher: Publisher, observer: AdsObserver | None = None) -> None:
        self._publisher = publisher
        self._observer: AdsObserver = observer or _Unobserved()

    async def StreamAggregatedResources(
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: aio.ServicerContext[Any, Any],
    ) -> None:
        stream = AdsStream(self._publisher, context.peer(), self._observer)
        self._observer.stream_opened()
        wake = asyncio.Event()
        self._publisher.add_listener(wake.set)
        reader = asyncio.create_task(self._read(request_iterator, stream, wake))
        try:
            while True:
                await wake.wait()
                wake.clear()
                for response in stream.responses():
                    await context.write(response)
                if reader.done():
                    reader.result()  # the client closed its side: end the stream too
                    return
        finally:
            stream.close()
            self._publisher.remove_listener(wake.set)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)  # its error was raised above
            self._observer.stream_closed()
            log.info("xds stream closed node=%s peer=%s", stream.node_id, stream.peer)

    @staticmethod
    async def _read(
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        stream: AdsStream,
        wake: asyncio.Event,
    ) -> None:
        first = True
        try:
            async for request in requests:
                stream.receive(request)
                if first:
                    first = False
                    log.info("xds stream opened node=%s peer=%s", stream.node_id, stream.peer)
                wake.set()
        finally:
            wake.set()


def add_ads_to_server(servicer: AggregatedDiscoveryService, server: aio.Server) -> None:
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(servicer, server)


def xds_auth_rules(tokens: AuthTokens) -> dict[str, tuple[Token, ...]]:
    """The client token guards ADS (it reveals backend addresses, like GetBackend) and
    LRS (its counts feed outlier ejection, like ReportClientStats)."""
    if tokens.client is None:
        return {}
    return dict.fromkeys((ADS_METHOD, LRS_METHOD), (tokens.client,))
