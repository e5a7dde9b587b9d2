"""Earliest-deadline-first scheduling of weighted entries: the machinery of weighted pickers.

Each entry is a periodic job whose period is ``1 / weight``; a pick takes the
entry with the earliest deadline and schedules it again one period later. Over
any stretch of picks each entry gets a share proportional to its weight, and the
picks of one entry are spread out rather than bunched (Envoy's common
``EdfScheduler``; gRFC A58, "Earliest Deadline First (EDF) Scheduler").

Following A58, each entry's first deadline is drawn at random within its first
period, so a freshly built scheduler (weighted pickers are rebuilt on every load
report) does not always start with the same entry. Ties go to the entry that
was scheduled first, then to the lower index, so a fixed seed gives a fixed order.

A pick costs O(log n) (a binary heap); building costs O(n).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

# (deadline, sequence number for FIFO among equal deadlines, entry index)
_Entry = tuple[float, int, int]


class EdfScheduler(Generic[T]):
    """Picks items in proportion to their weights, interleaved smoothly."""

    __slots__ = ("_heap", "_items", "_periods", "_sequence")

    def __init__(
        self,
        items: Sequence[T],
        weights: Sequence[float],
        rng: random.Random | None = None,
    ) -> None:
        """``weights[i]`` belongs to ``items[i]`` and must be positive and finite.

        Without ``rng`` every first deadline is one full period (deterministic).
        """
        if len(items) != len(weights):
            raise ValueError("items and weights differ in length")
        for weight in weights:
            if not 0.0 < weight < float("inf"):
                raise ValueError(f"weights must be positive and finite, got {weight!r}")
        self._items = list(items)
        self._periods = [1.0 / w for w in weights]
        self._sequence = len(items)
        offsets = [rng.random() if rng else 1.0 for _ in items]
        self._heap: list[_Entry] = [
            (offsets[i] * self._periods[i], i, i) for i in range(len(items))
        ]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self._items)

    def replace_item(self, index: int, item: T) -> None:
        """Hand out ``item`` in place of ``items[index]``, keeping its weight and deadline."""
        self._items[index] = item

    def pick(self, accept: Callable[[T], bool] | None = None) -> T | None:
        """The item with the earliest deadline that ``accept`` allows, or None.

        Entries that ``accept`` refuses keep their deadline (they have not been
        served), so they come first once they are allowed again.
        """
        skipped: list[_Entry] = []
        chosen: _Entry | None = None
        while self._heap:
            entry = heapq.heappop(self._heap)
            if accept is None or accept(self._items[entry[2]]):
                chosen = entry
                break
            skipped.append(entry)
        for entry in skipped:
            heapq.heappush(self._heap, entry)
        if chosen is None:
            return None
        deadline, _, index = chosen
        self._sequence += 1
        heapq.heappush(self._heap, (deadline + self._periods[index], self._sequence, index))
        return self._items[index]
