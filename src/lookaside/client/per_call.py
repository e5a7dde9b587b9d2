"""Picks through ``GetBackend``, one LB round trip per call, with a memory for bad times.

Used before the fast path has its first set, and for every call when the
user turns the fast path off. When the LB cannot be reached (``UNAVAILABLE``
or ``DEADLINE_EXCEEDED`` from ``GetBackend``), the client carries on with the
backends it remembers: the last ``max_remembered`` it was handed, round-robin,
minus those that refused a connection since. For ``lb_retry_interval`` after
finding the LB unreachable it does not wait on it at all; then it asks again.
The first failure and the recovery are logged once each.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import grpc
from grpc import aio

from lookaside.v1 import load_balancer_pb2 as pb
from lookaside.v1 import load_balancer_pb2_grpc as pb_grpc

log = logging.getLogger("lookaside.client")

LB_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class LbPicker:
    """``GetBackend`` per call, falling back on remembered backends."""

    def __init__(
        self,
        channel: aio.Channel,
        client_id: str,
        service: str,
        *,
        lb_timeout: float,
        retry_interval: float,
        max_remembered: int,
        metadata: Sequence[tuple[str, str]] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._channel = channel
        self._stub = pb_grpc.LoadBalancerStub(channel)
        self._client_id = client_id
        self._service = service
        self._lb_timeout = lb_timeout
        self._retry_interval = retry_interval
        self._max_remembered = max_remembered
        self._metadata = tuple(metadata)
        self._clock = clock
        self._remembered: OrderedDict[str, pb.BackendInfo] = OrderedDict()
        self._next_remembered = 0
        self._skip_lb_until = 0.0
        self._lb_lost = False

    async def get_backend(
        self, exclude: Sequence[str] = (), hash_key: str = "", timeout: float | None = None
    ) -> pb.BackendInfo:
        """Ask the LB for a backend (the seed's ``GetBackend``)."""
        request = pb.ServerRequest(
            client_id=self._client_id,
            service_name=self._service,
            hash_key=hash_key,
            exclude_ids=list(exclude),
        )
        return await self._stub.GetBackend(
            request, timeout=timeout or self._lb_timeout, metadata=self._metadata
        )

    async def pick(
        self, exclude: Sequence[str], hash_key: str, remaining: float
    ) -> tuple[pb.BackendInfo | None, bool, aio.AioRpcError | None]:
        """(backend, from the LB?, the LB's error): the LB's pick, else a remembered one.

        Raises the LB's ``AioRpcError`` when it answers with a status no retry
        can fix (``UNAUTHENTICATED``, ``INVALID_ARGUMENT``, ...).
        """
        if self._clock() < self._skip_lb_until:
            backend = self._pick_remembered(exclude)
            if backend is not None:
                return backend, False, None
        try:
            backend = await self.get_backend(
                exclude, hash_key, timeout=max(0.001, min(self._lb_timeout, remaining))
            )
        except aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND and self._remembered:
                # An LB that just restarted knows no backend until they re-register (within
                # a report interval); the ones it handed out before are the best guess.
                return self._pick_remembered(exclude), False, error
            if error.code() not in LB_UNREACHABLE:
                raise
            if self._unreachable(error):
                self._skip_lb_until = self._clock() + self._retry_interval
                if not self._lb_lost:
                    self._lb_lost = True
                    log.warning(
                        "LB unreachable for service=%s (code=%s); using %d remembered backend(s)",
                        self._service,
                        error.code().name,
                        len(self._remembered),
                    )
            return self._pick_remembered(exclude), False, error
        if self._lb_lost:
            self._lb_lost = False
            log.info("LB reachable again for service=%s", self._service)
        self.remember(backend)
        return backend, True, None

    def remembered(self) -> list[str]:
        """Ids of the backends this client would fall back on, oldest first."""
        return list(self._remembered)

    def remember(self, backend: pb.BackendInfo) -> None:
        self._remembered[backend.id] = backend
        self._remembered.move_to_end(backend.id)
        if len(self._remembered) > self._max_remembered:
            self._remembered.popitem(last=False)

    def forget(self, backend_id: str) -> None:
        self._remembered.pop(backend_id, None)

    def _pick_remembered(self, exclude: Sequence[str]) -> pb.BackendInfo | None:
        """Round-robin over the remembered backends not in ``exclude``."""
        candidates = [b for b in self._remembered.values() if b.id not in exclude]
        if not candidates:
            return None
        self._next_remembered += 1
        return candidates[self._next_remembered % len(candidates)]

    def _unreachable(self, error: aio.AioRpcError) -> bool:
        """True when the LB did not answer (as opposed to answering "no backend")."""
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return True
        state = self._channel.get_state(try_to_connect=False)
        return state != grpc.ChannelConnectivity.READY
