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

A load report updates the picker in O(log n) instead of rebuilding it: the
reporting backend's new entry is pushed and its old one is left in the heap
marked stale (each entry carries its backend's generation), to be dropped when
it surfaces ("lazy deletion", as in Python's ``heapq`` documentation). Stale
entries are swept out when they outnumber the live ones, O(n) once per n
reports, so O(1) amortized.
"""

from __future__ import annotations

import heapq
import math
import random

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import (
    Clock,
    Picker,
    PickTracker,
    Policy,
    Snapshot,
    SnapshotSource,
    effective_load,
)

DEFAULT_TOLERANCE = 0.001

# (load bucket, random tie-break, endpoint index, generation of that endpoint's entry)
_HeapEntry = tuple[int, float, int, int]
#: Sweep stale entries once the heap holds more than this many per endpoint (plus slack).
_STALE_FACTOR = 2
_STALE_SLACK = 16


class LeastLoadPicker(Picker):
    __slots__ = (
        "_endpoints",
        "_generation",
        "_heap",
        "_index",
        "_loads",
        "_rng",
        "_tolerance",
        "_tracker",
    )

    def __init__(
        self,
        endpoints: tuple[Endpoint, ...],
        tracker: PickTracker,
        rng: random.Random,
        tolerance: float,
    ) -> None:
        self._endpoints = list(endpoints)
        self._index = {e.id: i for i, e in enumerate(endpoints)}
        self._tracker = tracker
        self._rng = rng
        self._tolerance = tolerance
        self._loads = [effective_load(e, tracker) for e in endpoints]
        self._generation = [0] * len(endpoints)
        self._heap: list[_HeapEntry] = [self._entry(i) for i in range(len(endpoints))]
        heapq.heapify(self._heap)

    def _entry(self, index: int) -> _HeapEntry:
        bucket = math.floor(self._loads[index] / self._tolerance + 1e-9)
        return (bucket, self._rng.random(), index, self._generation[index])

    def _push_fresh(self, index: int) -> None:
        """Supersede ``index``'s entry in the heap by one with its current load."""
        self._generation[index] += 1
        heapq.heappush(self._heap, self._entry(index))
        if len(self._heap) > _STALE_FACTOR * len(self._endpoints) + _STALE_SLACK:
            self._heap = [e for e in self._heap if e[3] == self._generation[e[2]]]
            heapq.heapify(self._heap)

    def loads(self) -> dict[str, float]:
        """Each backend's effective load as the picker sees it (for tests and tools)."""
        return {e.id: load for e, load in zip(self._endpoints, self._loads, strict=True)}

    def update(self, endpoint: Endpoint) -> bool:
        """A report from ``endpoint``: O(log n). False if it is not one of ours."""
        index = self._index.get(endpoint.id)
        if index is None:
            return False
        self._endpoints[index] = endpoint
        self._loads[index] = effective_load(endpoint, self._tracker)
        self._push_fresh(index)
        return True

    def pick(self, request: PickRequest) -> Endpoint | None:
        heap, generation = self._heap, self._generation
        skipped: list[_HeapEntry] = []
        chosen: int | None = None
        while heap:
            entry = heapq.heappop(heap)
            index = entry[2]
            if entry[3] != generation[index]:
                continue  # superseded by a later report or pick
            if self._endpoints[index].id in request.exclude_ids:
                skipped.append(entry)
                continue
            chosen = index
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        if chosen is None:
            return None
        endpoint = self._endpoints[chosen]
        self._tracker.record(endpoint.id)
        self._loads[chosen] += 1.0 / endpoint.capacity
        heapq.heappush(heap, self._entry(chosen))
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

    def update(self, picker: Picker, endpoint: Endpoint, snapshot: SnapshotSource) -> Picker:
        if isinstance(picker, LeastLoadPicker) and picker.update(endpoint):
            return picker
        return super().update(picker, endpoint, snapshot)
