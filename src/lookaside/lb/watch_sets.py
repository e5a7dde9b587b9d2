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

Size: a set larger than ``max_bytes`` (the LB's ``--max-message-bytes``, which
also caps what it sends; about 1,100 backends at the default 64 KiB) goes out as
several messages, each under the limit: the first says what the set is (whole,
or a delta on ``base_version``), the later ones are deltas on the set's own
version, and all but the last have ``continued`` set. A client acts on the set
once the last one arrives; one that knows only deltas still ends with the set.
"""

from __future__ import annotations

from lookaside import convert
from lookaside.lb.balancer import Balancer
from lookaside.lb.watch_hub import WatchHub
from lookaside.model import Endpoint
from lookaside.serving import DEFAULT_MAX_MESSAGE_BYTES
from lookaside.v1 import load_balancer_pb2 as pb

#: Bytes allowed for a field's tag and length prefix (varints), per entry and header.
_SLACK = 8


class WatchSets:
    """Builds (and caches) the full sets and deltas of every watched service."""

    def __init__(
        self, balancer: Balancer, hub: WatchHub, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        self._balancer = balancer
        self._hub = hub
        self._max_bytes = max_bytes
        #: service -> backend id -> (endpoint, its conversion)
        self._infos: dict[str, dict[str, tuple[Endpoint, pb.BackendInfo]]] = {}
        #: service -> (published version, {base version or None for full: messages})
        self._messages: dict[str, tuple[int, dict[int | None, list[pb.BackendSet]]]] = {}

    def _info(
        self, infos: dict[str, tuple[Endpoint, pb.BackendInfo]], e: Endpoint
    ) -> pb.BackendInfo:
        cached = infos.get(e.id)
        if cached is not None and cached[0] is e:
            return cached[1]
        info = convert.endpoint_to_pb(e)
        infos[e.id] = (e, info)
        return info

    def messages(self, service: str, base: int | None) -> list[pb.BackendSet]:
        """What a subscriber that last got version ``base`` (None: nothing) gets now.

        One message, or several when the set does not fit in ``max_bytes``.
        """
        published = self._hub.published(service)
        cached = self._messages.get(service)
        if cached is None or cached[0] != published:
            cached = (published, {})
            self._messages[service] = cached
        messages = cached[1].get(base)
        if messages is None:
            messages = self._split(self._build(service, base, published))
            cached[1][base] = messages
        return messages

    def _split(self, whole: pb.BackendSet) -> list[pb.BackendSet]:
        """``whole`` as one message, or as messages of at most ``max_bytes`` each."""
        if whole.ByteSize() <= self._max_bytes:
            return [whole]
        head = pb.BackendSet()
        head.CopyFrom(whole)
        del head.backends[:]
        del head.removed_ids[:]
        head.continued = True
        # Room per message: the limit less the header, each entry with its tag and length.
        room = self._max_bytes - head.ByteSize() - _SLACK
        parts = [self._part(head, first=True)]
        used = 0

        def make_room(size: int) -> pb.BackendSet:
            nonlocal used
            if used and used + size > room:
                parts.append(self._part(head, first=False))
                used = 0
            used += size
            return parts[-1]

        for info in whole.backends:
            make_room(info.ByteSize() + _SLACK).backends.append(info)
        for gone in whole.removed_ids:
            make_room(len(gone.encode()) + _SLACK).removed_ids.append(gone)
        parts[-1].continued = False
        return parts

    @staticmethod
    def _part(head: pb.BackendSet, first: bool) -> pb.BackendSet:
        part = pb.BackendSet()
        part.CopyFrom(head)
        if not first:  # a delta on the set's own version
            part.full = False
            part.base_version = head.version
        return part

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
