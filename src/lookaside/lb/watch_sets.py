"""The ``BackendSet`` messages of ``WatchBackends``: built once, sent to every subscriber.

A push used to cost each subscriber a conversion of the whole live set to
protobuf (about 60 kB and a few milliseconds for 1,000 backends), on every
change. Here:

* each backend's ``BackendInfo`` is converted once per report and reused by
  every message that carries it (cached against the endpoint object, which the
  registry replaces on every change);
* a message is cached for the publication it belongs to (see
  :mod:`lookaside.lb.watch_hub`), so the subscribers that are caught up share
  one message: one build per publication, not one per subscriber;
* subscribers that asked for deltas (``WatchRequest.accept_deltas``) get the
  whole set once, then only the backends that joined or changed and the ids
  that left, each message naming the version it applies on (``base_version``).

The message for a publication ``v`` carries every change up to ``v`` with the
backends' current state; changes after ``v`` come again in the next message, so
a client applying the messages in order ends with the LB's set.
"""

from __future__ import annotations

from lookaside import convert
from lookaside.lb.balancer import Balancer
from lookaside.lb.watch_hub import WatchHub
from lookaside.model import Endpoint
from lookaside.v1 import load_balancer_pb2 as pb


class WatchSets:
    """Builds (and caches) the full sets and deltas of every watched service."""

    def __init__(self, balancer: Balancer, hub: WatchHub) -> None:
        self._balancer = balancer
        self._hub = hub
        #: service -> backend id -> (endpoint, its conversion)
        self._infos: dict[str, dict[str, tuple[Endpoint, pb.BackendInfo]]] = {}
        #: service -> (published version, {base version or None for full: message})
        self._messages: dict[str, tuple[int, dict[int | None, pb.BackendSet]]] = {}

    def _info(
        self, infos: dict[str, tuple[Endpoint, pb.BackendInfo]], e: Endpoint
    ) -> pb.BackendInfo:
        cached = infos.get(e.id)
        if cached is not None and cached[0] is e:
            return cached[1]
        info = convert.endpoint_to_pb(e)
        infos[e.id] = (e, info)
        return info

    def message(self, service: str, base: int | None) -> pb.BackendSet:
        """What a subscriber that last got version ``base`` (None: nothing) gets now."""
        published = self._hub.published(service)
        cached = self._messages.get(service)
        if cached is None or cached[0] != published:
            cached = (published, {})
            self._messages[service] = cached
        message = cached[1].get(base)
        if message is None:
            message = self._build(service, base, published)
            cached[1][base] = message
        return message

    def _build(self, service: str, base: int | None, version: int) -> pb.BackendSet:
        changed = None if base is None else self._hub.changed_between(service, base, version)
        policy = self._balancer.policy_name(service)
        infos = self._infos.setdefault(service, {})
        if changed is None:
            live = self._balancer.live(service)
            if len(infos) > 2 * len(live) + 64:  # forget backends long gone, O(n) on full sets
                keep = {e.id for e in live}
                infos = self._infos[service] = {i: v for i, v in infos.items() if i in keep}
            return pb.BackendSet(
                service_name=service,
                policy=policy,
                backends=[self._info(infos, e) for e in live],
                version=version,
                full=True,
            )
        backends = []
        removed = []
        for backend_id in changed:
            endpoint = self._balancer.live_endpoint(service, backend_id)
            if endpoint is None:
                removed.append(backend_id)
                infos.pop(backend_id, None)
            else:
                backends.append(self._info(infos, endpoint))
        return pb.BackendSet(
            service_name=service,
            policy=policy,
            backends=backends,
            version=version,
            full=False,
            base_version=base or 0,
            removed_ids=removed,
        )
