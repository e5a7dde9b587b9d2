"""``least_load``: the backend with the lowest load, counting picks not yet reported.

The seed picked the lowest *reported* load, random among ties within a
tolerance. Between two reports that sends every client to the same backend.
Here the effective load is ``reported load + picks since that report / capacity``
(see :func:`~lookaside.policies.base.effective_load`), kept in a binary heap so a
pick costs O(log n): pop the least loaded, hand it out, push it back with its
load raised by one pick's worth.

Ties: loads are bucketed by ``tolerance`` and ties broken by a random number
drawn when the entry is pushed, which is the seed's "random among the nearly
equal minimum", without a scan.
"""

from __future__ import annotations

import heapq
import math
import random

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Clock, Picker, PickTracker, Policy, Snapshot, effective_load

DEFAULT_TOLERANCE = 0.001

_HeapEntry = tuple[int, float, int]  # (load bucket, random tie-break, endpoint index)


class LeastLoadPicker(Picker):
    __slots__ = ("_endpoints", "_heap", "_loads", "_rng", "_tolerance", "_tracker")

    def __init__(
        self,
        endpoints: tuple[Endpoint, ...],
        tracker: PickTracker,
        rng: random.Random,
        tolerance: float,
    ) -> None:
        self._endpoints = endpoints
        self._tracker = tracker
        self._rng = rng
        self._tolerance = tolerance
        self._loads = [effective_load(e, tracker) for e in endpoints]
        self._heap: list[_HeapEntry] = [self._entry(i) for i in range(len(endpoints))]
        heapq.heapify(self._heap)

    def _entry(self, index: int) -> _HeapEntry:
        bucket = math.floor(self._loads[index] / self._tolerance + 1e-9)
        return (bucket, self._rng.random(), index)

    def pick(self, request: PickRequest) -> Endpoint | None:
        skipped: list[_HeapEntry] = []
        chosen: int | None = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            if self._endpoints[entry[2]].id in request.exclude_ids:
                skipped.append(entry)
                continue
            chosen = entry[2]
            break
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        if chosen is None:
            return None
        endpoint = self._endpoints[chosen]
        self._tracker.record(endpoint.id)
        self._loads[chosen] += 1.0 / endpoint.capacity
        heapq.heappush(self._heap, self._entry(chosen))
        return endpoint


class LeastLoad(Policy):
    name = "least_load"
    uses_load = True

    def __init__(
        self,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        super().__init__(rng, clock)
        if tolerance <= 0:
            raise ValueError("tolerance must be positive")
        self.tolerance = tolerance

    def build(self, snapshot: Snapshot) -> Picker:
        return LeastLoadPicker(snapshot.endpoints, snapshot.tracker, self.rng, self.tolerance)
