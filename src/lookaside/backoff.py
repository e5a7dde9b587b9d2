"""Jittered exponential back-off, shared by every side that retries a connection.

Full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015):
each delay is drawn from ``[ceiling / 2, ceiling]`` so that many backends or
clients that lost the LB at the same moment do not come back in lock-step.
"""

from __future__ import annotations

import random

MAX_BACKOFF = 2.0  # seconds: the longest wait between two attempts


class Backoff:
    """Exponential back-off with full jitter (AWS architecture blog's variant)."""

    def __init__(
        self, base: float = 0.1, cap: float = MAX_BACKOFF, rng: random.Random | None = None
    ):
        self._base, self._cap = base, cap
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self._cap, self._base * 2**self._attempt)
        self._attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0
