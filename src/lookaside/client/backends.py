"""One channel per backend, kept and reused; a departed backend's channel is closed.

A :class:`Backend` is what a call needs of a pick: the backend's id (for the
stats sent to the LB) and its channel, with the channel's multi-callables
cached per method so that a call on a hot path builds nothing but the call.

Channels of backends that left the set are closed with a grace period, so the
calls still running on them (a draining backend) finish. In GetBackend mode,
where the client never sees a set, at most :data:`MAX_CACHED_CHANNELS` are kept
(least recently used go first), and a backend that refused a connection is
dropped at once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from lookaside.channels import ChannelOptions, dial
from lookaside.v1 import load_balancer_pb2 as pb

MAX_CACHED_CHANNELS = 256

Serializer = Callable[[Any], bytes] | None
Deserializer = Callable[[bytes], Any] | None
#: (call type, method path, request serializer, response deserializer)
MethodKey = tuple[str, str, Serializer, Deserializer]


def target_of(info: pb.BackendInfo) -> str:
    host = f"[{info.address}]" if ":" in info.address else info.address
    return f"{host}:{info.port}"


class Backend:
    """A backend's id, address and open channel, with cached multi-callables."""

    __slots__ = ("_callables", "channel", "id", "info", "target")

    def __init__(self, info: pb.BackendInfo, channel: aio.Channel) -> None:
        self.info = info
        self.id = info.id
        self.target = target_of(info)
        self.channel = channel
        self._callables: dict[MethodKey, Any] = {}

    def callable(self, key: MethodKey) -> Any:
        """The channel's multi-callable for one method (made once)."""
        found = self._callables.get(key)
        if found is None:
            kind, method, serializer, deserializer = key
            factory = getattr(self.channel, kind)
            found = self._callables[key] = factory(
                method,
                request_serializer=serializer,
                response_deserializer=deserializer,
                _registered_method=True,
            )
        return found


class BackendPool:
    """The open backend channels of one lookaside channel, keyed by backend id."""

    def __init__(
        self,
        credentials: grpc.ChannelCredentials | None,
        options: ChannelOptions = (),
        grace: float = 30.0,
    ) -> None:
        self._credentials = credentials
        self._options = options
        self._grace = grace
        self._backends: OrderedDict[str, Backend] = OrderedDict()
        self._closing: dict[asyncio.Task[None], aio.Channel] = {}

    def __len__(self) -> int:
        return len(self._backends)

    def by_id(self, backend_id: str) -> Backend | None:
        """The open backend of that id (the hot path: the watcher reports moves as departures)."""
        return self._backends.get(backend_id)

    def get(self, info: pb.BackendInfo) -> Backend:
        """The backend for ``info``, opening its channel the first time (or when it moved)."""
        backend = self._backends.get(info.id)
        if (
            backend is not None
            and backend.info.port == info.port
            and backend.info.address == info.address
        ):
            return backend
        if backend is not None:
            self._close(backend, self._grace)
        backend = self._backends[info.id] = Backend(
            info, dial(target_of(info), self._credentials, self._options)
        )
        if len(self._backends) > MAX_CACHED_CHANNELS:
            _, oldest = self._backends.popitem(last=False)
            self._close(oldest, self._grace)
        return backend

    def touch(self, backend_id: str) -> None:
        """Mark a backend recently used (GetBackend mode keeps the most recent ones)."""
        if backend_id in self._backends:
            self._backends.move_to_end(backend_id)

    def drop(self, backend_ids: set[str], grace: float | None = None) -> None:
        """Close the channels of backends that left (calls in flight get ``grace``)."""
        for backend_id in backend_ids:
            backend = self._backends.pop(backend_id, None)
            if backend is not None:
                self._close(backend, self._grace if grace is None else grace)

    def _close(self, backend: Backend, grace: float) -> None:
        task = asyncio.get_running_loop().create_task(backend.channel.close(grace))
        self._closing[task] = backend.channel
        task.add_done_callback(self._closing.pop)

    async def close(self, grace: float | None = None) -> None:
        """Close every channel, the departed ones still draining included."""
        channels = [backend.channel for backend in self._backends.values()]
        channels.extend(self._closing.values())
        self._backends.clear()
        for task in list(self._closing):
            task.cancel()
        await asyncio.gather(*(channel.close(grace) for channel in channels))
