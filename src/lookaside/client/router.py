"""Where the calls of one lookaside channel go, and what the LB hears about them.

The :class:`Router` owns everything a channel shares between its calls: the
channel to the LB (one or several replicas), the fast-path watcher, the
GetBackend picker, the pool of backend channels, the retry policies and the
call statistics with their reporter. Calls ask it for a backend
(:meth:`pick_now` on the hot path, :meth:`pick` otherwise) and tell it how
each attempt ended (:meth:`record`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import grpc
from grpc import aio

from lookaside.channels import dial
from lookaside.client.attempts import rpc_error
from lookaside.client.backends import Backend, BackendPool
from lookaside.client.config import ClientConfig
from lookaside.client.fast_path import BackendWatcher
from lookaside.client.per_call import LbPicker
from lookaside.client.retry import RetryPolicies, RetryPolicy
from lookaside.client.stats import CallStats, ClientStatsReporter
from lookaside.model import PickRequest
from lookaside.security import bearer_metadata
from lookaside.v1 import load_balancer_pb2 as pb

#: Statuses that count against the backend in the stats sent to the LB.
BACKEND_FAULTS = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
    }
)


class Router:
    """The shared state behind one lookaside channel."""

    def __init__(
        self,
        lb_target: str,
        service: str,
        config: ClientConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.config = config
        self.client_id = config.resolved_client_id()
        self.rng = rng or random.Random()
        self.max_transparent_retries = config.max_transparent_retries
        credentials = config.tls.channel_credentials() if config.tls is not None else None
        self.credentials = credentials
        metadata = bearer_metadata(config.token)
        self.lb_channel = dial(lb_target, credentials)
        self.pool = BackendPool(credentials, config.channel_options, config.departed_grace)
        self.retry_policies = RetryPolicies(config.service_config)
        self.stats = CallStats()
        self.lb_picker = LbPicker(
            self.lb_channel,
            self.client_id,
            service,
            lb_timeout=config.lb_timeout,
            retry_interval=config.lb_retry_interval,
            max_remembered=config.max_remembered,
            metadata=metadata,
            clock=clock,
        )
        self.watcher = (
            BackendWatcher(
                self.lb_channel,
                self.client_id,
                service,
                policy=config.fast_path_policy,
                metadata=metadata,
                rng=self.rng,
                accept_deltas=config.accept_deltas,
                on_departed=self._departed,
                clock=clock,
            )
            if config.fast_path
            else None
        )
        self.reporter = (
            ClientStatsReporter(
                self.lb_channel,
                self.stats,
                self.client_id,
                service,
                config.stats_interval,
                metadata=metadata,
            )
            if config.report_stats
            else None
        )
        self._plain_pick = PickRequest(self.client_id)
        #: Also told which backends left (a blocking channel's own backend channels).
        self.departure_listeners: list[Callable[[set[str]], None]] = []
        self._started = False
        self._last_lb_error: aio.AioRpcError | None = None

    def start(self) -> None:
        """Start the watch and the stats reporter (on the first call: needs a running loop)."""
        if self._started:
            return
        self._started = True
        if self.watcher is not None:
            self.watcher.start()
        if self.reporter is not None:
            self.reporter.start()

    def policy_for(self, method: str) -> RetryPolicy | None:
        return self.retry_policies.for_method(method)

    def _departed(self, backend_ids: set[str]) -> None:
        self.pool.drop(backend_ids)
        for listener in self.departure_listeners:
            listener(backend_ids)

    def pick_info_now(self, hash_key: str = "") -> pb.BackendInfo | None:
        """A local pick as the LB's message (safe from any thread: no channel is opened)."""
        watcher = self.watcher
        if watcher is None:
            return None
        backend_id = watcher.pick_id(
            PickRequest(self.client_id, hash_key) if hash_key else self._plain_pick
        )
        return None if backend_id is None else watcher.info(backend_id)

    def pick_now(self, hash_key: str = "") -> Backend | None:
        """The hot path: a local pick, or None (no set yet: the caller takes :meth:`pick`)."""
        watcher = self.watcher
        if watcher is None:
            return None
        picker = watcher.picker
        if picker is None:
            return None
        endpoint = picker.pick(
            PickRequest(self.client_id, hash_key) if hash_key else self._plain_pick
        )
        if endpoint is None:
            return None
        backend = self.pool.by_id(endpoint.id)
        if backend is None:
            info = watcher.info(endpoint.id)
            return None if info is None else self.pool.get(info)
        return backend

    async def pick(
        self, exclude: frozenset[str], remaining: float | None, hash_key: str = ""
    ) -> tuple[Backend | None, bool]:
        """(a backend not in ``exclude`` or None, picked with the LB's current view?)."""
        self.start()
        watcher = self.watcher
        if watcher is not None:
            info = watcher.pick(PickRequest(self.client_id, hash_key, exclude))
            if info is not None:
                return self.pool.get(info), not watcher.stale
            if watcher.ready.is_set():
                return None, not watcher.stale  # we hold a set: nobody else is left
        budget = self.config.lb_timeout if remaining is None else remaining
        if budget <= 0:
            return None, True
        info, from_lb, error = await self.lb_picker.pick(tuple(exclude), hash_key, budget)
        self._last_lb_error = error
        if info is None:
            return None, from_lb
        backend = self.pool.get(info)
        self.pool.touch(info.id)
        return backend, from_lb

    def no_backend_error(self) -> aio.AioRpcError:
        """What a call fails with when nobody can serve it."""
        if self._last_lb_error is not None:
            return self._last_lb_error
        return rpc_error(
            grpc.StatusCode.UNAVAILABLE, f"no live backend for service {self.service!r}"
        )

    def refused(self, backend_id: str) -> None:
        """A backend refused a connection: do not fall back on it (GetBackend mode)."""
        self.lb_picker.forget(backend_id)

    def record_ok(self, backend_id: str, started: float) -> None:
        """A successful attempt (the hot path: no status code to look up)."""
        self.stats.record(backend_id, True, (time.perf_counter() - started) * 1000.0)

    def record(self, backend_id: str, code: grpc.StatusCode, started: float) -> None:
        self.stats.record(
            backend_id, code not in BACKEND_FAULTS, (time.perf_counter() - started) * 1000.0
        )

    async def close(self, grace: float | None = None) -> None:
        if self.watcher is not None:
            await self.watcher.stop()
        if self.reporter is not None:
            await self.reporter.stop()  # sends what is left
        await self.pool.close(grace)
        await self.lb_channel.close(None)
