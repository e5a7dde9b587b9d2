"""The attempts of one call: which backend next, whether to try again, what to report.

One :class:`Attempts` per call that failed once (or found no backend at once);
a call whose first attempt succeeds never makes one. It keeps the call's
deadline across attempts, the backends already tried (each retry goes to
another one while there is another), and the counts of transparent and
configured retries (see :mod:`lookaside.client.retry` for the rules).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import grpc
from grpc import aio

from lookaside.client.retry import RetryPolicy, is_transparent

if TYPE_CHECKING:
    from lookaside.client.backends import Backend
    from lookaside.client.router import Router

WAIT_FOR_READY_PAUSE = 0.2  # seconds between looks for a backend when waiting for one


def rpc_error(code: grpc.StatusCode, details: str) -> aio.AioRpcError:
    """An error of our own making, shaped like the ones gRPC raises."""
    return aio.AioRpcError(code, aio.Metadata(), aio.Metadata(), details, None)


class Attempts:
    """Deadline, exclusions and retry counts of one call."""

    __slots__ = (
        "_deadline",
        "_hash_key",
        "_policy",
        "_router",
        "_wait_for_ready",
        "from_lb",
        "lb_seconds",
        "refused",
        "retries",
        "transparent",
        "tried",
    )

    def __init__(
        self,
        router: Router,
        policy: RetryPolicy | None,
        deadline: float | None,
        wait_for_ready: bool,
        hash_key: str = "",
    ) -> None:
        self._router = router
        self._policy = policy
        self._deadline = deadline
        self._wait_for_ready = wait_for_ready
        self._hash_key = hash_key
        self.lb_seconds = 0.0
        self.tried: list[str] = []
        self.refused: set[str] = set()
        self.retries = 0
        self.transparent = 0
        self.from_lb = True

    @property
    def count(self) -> int:
        """Attempts sent so far."""
        return len(self.tried)

    def remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.perf_counter()

    def attempt_timeout(self) -> float | None:
        """The next attempt's timeout: what is left, capped by the per-attempt timeout."""
        left = self.remaining()
        per_attempt = self._policy.per_attempt_timeout if self._policy is not None else None
        if per_attempt is None or (self._policy is not None and self._last_attempt()):
            return left
        return per_attempt if left is None else min(left, per_attempt)

    def _last_attempt(self) -> bool:
        return self._policy is not None and self.retries + 1 >= self._policy.max_attempts

    def sent(self, backend: Backend) -> None:
        self.tried.append(backend.id)

    async def next_backend(self) -> Backend:
        """Another backend than those tried, if there is one; wait for one if asked to."""
        while True:
            started = time.perf_counter()
            backend, from_lb = await self._router.pick(
                self._excluded(), self.remaining(), self._hash_key
            )
            if backend is None:
                backend, from_lb = await self._router.pick(
                    frozenset(self.refused), self.remaining(), self._hash_key
                )
            self.lb_seconds += time.perf_counter() - started
            if backend is not None:
                self.from_lb = self.from_lb and from_lb
                return backend
            left = self.remaining()
            if not self._wait_for_ready or (left is not None and left <= 0):
                raise self._router.no_backend_error()
            await asyncio.sleep(
                WAIT_FOR_READY_PAUSE if left is None else min(left, WAIT_FOR_READY_PAUSE)
            )
            self.refused.clear()  # a refusing backend may be back: look at everyone again

    def _excluded(self) -> frozenset[str]:
        return frozenset(self.tried)

    async def again(self, error: aio.AioRpcError, committed: bool = False) -> bool:
        """Whether to send the call again after ``error`` (after the back-off, if any)."""
        if committed:
            return False
        left = self.remaining()
        if left is not None and left <= 0:
            return False
        code = error.code()
        if is_transparent(code, error.details()):
            if self.tried:
                self.refused.add(self.tried[-1])
                self._router.refused(self.tried[-1])
            if self._wait_for_ready or self.transparent < self._router.max_transparent_retries:
                self.transparent += 1
                return True
        policy = self._policy
        if policy is None or code not in policy.retryable_codes:
            return False
        if self.retries + 1 >= policy.max_attempts:
            return False
        self.retries += 1
        delay = policy.backoff(self.retries, self._router.rng)
        if left is not None and delay >= left:
            return False
        await asyncio.sleep(delay)
        return True
