"""``p2c``: power of two choices — sample two distinct backends, take the less loaded.

Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing" (2001):
comparing two random candidates instead of scanning all keeps the busiest
backend within ``ln ln n / ln 2 + O(1)`` of the mean, while one random choice
drifts ``ln n / ln ln n`` above it. Envoy's ``least_request`` (choice_count 2)
and gRFC A48 use the same rule.

Load is :func:`~lookaside.policies.base.effective_load`: the last report plus
the picks handed out since, per unit of capacity, so a burst of picks between
two reports spreads out. Randomness makes it robust where a deterministic
least-load choice herds: two LB replicas (or two reports that land together)
do not all pick the same backend.

A pick is O(1): two draws and two comparisons. With three backends or fewer
every allowed backend is compared (sampling two of three would miss the best a
third of the time for no saving). Excluded backends (``PickRequest.exclude_ids``,
the client's failover list) are skipped by redrawing a few times; when most
backends are excluded the pick falls back to scanning the allowed ones, O(n),
which only happens on a client's retry path.

A load report replaces the reporting backend's endpoint in place, O(1): the
picker keeps no order or aggregate that a report could invalidate.
"""

from __future__ import annotations

import random

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import (
    Picker,
    PickTracker,
    Policy,
    Snapshot,
    SnapshotSource,
    effective_load,
)

#: Compare every allowed backend when there are at most this many.
COMPARE_ALL_AT_MOST = 3
#: Redraws per candidate before falling back to a scan of the allowed backends.
_REDRAWS = 8


class P2CPicker(Picker):
    __slots__ = ("_endpoints", "_index", "_rng", "_tracker")

    def __init__(
        self, endpoints: tuple[Endpoint, ...], tracker: PickTracker, rng: random.Random
    ) -> None:
        self._endpoints = list(endpoints)
        self._index = {e.id: i for i, e in enumerate(endpoints)}
        self._tracker = tracker
        self._rng = rng

    def update(self, endpoint: Endpoint) -> bool:
        """A report from ``endpoint``: O(1). False if it is not one of ours."""
        index = self._index.get(endpoint.id)
        if index is None:
            return False
        self._endpoints[index] = endpoint
        return True

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(self._endpoints)

    def pick(self, request: PickRequest) -> Endpoint | None:
        endpoints = self._endpoints
        exclude = request.exclude_ids
        if len(endpoints) <= COMPARE_ALL_AT_MOST:
            chosen = self._least_of([e for e in endpoints if e.id not in exclude])
        elif exclude:
            chosen = self._two_allowed(exclude)
        else:
            chosen = self._better(*self._two_distinct(len(endpoints)))
        if chosen is not None:
            self._tracker.record(chosen.id)
        return chosen

    def _two_distinct(self, n: int) -> tuple[Endpoint, Endpoint]:
        """Two different endpoints, uniformly: the second draw skips the first's slot."""
        first = self._rng.randrange(n)
        second = self._rng.randrange(n - 1)
        if second >= first:
            second += 1
        return self._endpoints[first], self._endpoints[second]

    def _two_allowed(self, exclude: frozenset[str]) -> Endpoint | None:
        endpoints = self._endpoints
        n = len(endpoints)
        first: Endpoint | None = None
        for _ in range(_REDRAWS):
            candidate = endpoints[self._rng.randrange(n)]
            if candidate.id in exclude:
                continue
            if first is None:
                first = candidate
            elif candidate.id != first.id:
                return self._better(first, candidate)
        # Unlucky or mostly excluded: sample from the allowed ones explicitly.
        allowed = [e for e in endpoints if e.id not in exclude]
        if len(allowed) <= 2:
            return self._least_of(allowed)
        first_index, second_index = self._rng.sample(range(len(allowed)), 2)
        return self._better(allowed[first_index], allowed[second_index])

    def _better(self, first: Endpoint, second: Endpoint) -> Endpoint:
        """The less loaded of two; the first (a random draw) on a tie."""
        tracker = self._tracker
        if effective_load(second, tracker) < effective_load(first, tracker):
            return second
        return first

    def _least_of(self, candidates: list[Endpoint]) -> Endpoint | None:
        """The least loaded candidate, random among equals."""
        if not candidates:
            return None
        loads = [effective_load(e, self._tracker) for e in candidates]
        lowest = min(loads)
        tied = [e for e, load in zip(candidates, loads, strict=True) if load == lowest]
        return tied[0] if len(tied) == 1 else self._rng.choice(tied)


class PowerOfTwoChoices(Policy):
    name = "p2c"
    uses_load = True

    def build(self, snapshot: Snapshot) -> Picker:
        return P2CPicker(snapshot.endpoints, snapshot.tracker, self.rng)

    def update(self, picker: Picker, endpoint: Endpoint, snapshot: SnapshotSource) -> Picker:
        if isinstance(picker, P2CPicker) and picker.update(endpoint):
            return picker
        return super().update(picker, endpoint, snapshot)
