"""``ring_hash``: consistent hashing of the request key, so a key keeps reaching one backend.

Karger et al., "Consistent Hashing and Random Trees" (1997), as in Envoy's
``ring_hash`` and gRPC's (gRFC A42): each backend owns points on a 64-bit ring;
a request's key (``PickRequest.key``: ``hash_key``, else ``client_id``) goes to
the first point at or after its hash. When one backend joins N others it takes
over only the arcs in front of its own points, about 1/(N+1) of the keys, and
every moved key moves *to* the newcomer; a leave moves only the leaver's keys.

Why a ring rather than Maglev (Eisenbud et al., 2016)? Maglev picks in O(1)
from a lookup table, but it moves more keys than necessary on membership
changes and has no natural "next backend" for a key. The ring moves the
minimum, and its next distinct point is exactly the failover we need: a request
that excludes its key's backend walks forward to the next allowed one, so the
retries of one key agree with each other too. A Python ``bisect`` over a ring of
a few thousand integers costs about what a Maglev table lookup does anyway.

Points and weights: a backend of the smallest weight gets ``points_per_backend``
points and the others proportionally more (``Endpoint.weight``), so each
backend's share of keys follows its weight. Point counts depend only on the
weight ratio to the smallest, not on how many backends there are, which is what
keeps key movement minimal; unlike Envoy/A42's ``min_ring_size`` scaling, which
re-cuts every backend's points when the count changes. Only beyond
``max_ring_size`` points are all counts scaled down (then a join moves more).

Hashes are blake2b (hashlib), stable across processes and Python versions,
never Python's salted ``hash()``. A backend's points are hashed from its id
(ids are the identity of a backend here, and stay the same when it restarts on a
new port) and cached, so a membership change costs a sort of the ring,
O(R log R), and a pick is one bisect, O(log R).

Requests without a key have no affinity to keep: they get a random point on
the ring, which spreads them in proportion to the backends' weights.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_left
from dataclasses import dataclass
from itertools import chain

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Clock, Picker, Policy, Snapshot

# A ring point packs a 64-bit hash with the owner's slot number in the low bits,
# so the ring is one sorted list of ints and is built by sorting in C.
_SLOT_BITS = 20
_SLOT_MASK = (1 << _SLOT_BITS) - 1
_HASH_BITS = 64


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process."""
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=_HASH_BITS // 8).digest()
    return int.from_bytes(digest, "big")


@dataclass(frozen=True, slots=True)
class RingHashConfig:
    """Ring size parameters."""

    #: Points of a backend with the smallest weight; more points, more even shares.
    points_per_backend: int = 256
    #: Upper bound on the ring; beyond it every backend's count is scaled down.
    max_ring_size: int = 65536

    def __post_init__(self) -> None:
        if self.points_per_backend < 1:
            raise ValueError("points_per_backend must be at least 1")
        if self.max_ring_size < 1:
            raise ValueError("max_ring_size must be at least 1")


def point_counts(weights: list[float], config: RingHashConfig) -> list[int]:
    """Points per backend, proportional to weight; at least one each."""
    if not weights:
        return []
    lightest = min(weights)
    counts = [max(1, round(config.points_per_backend * w / lightest)) for w in weights]
    total = sum(counts)
    if total > config.max_ring_size:
        scale = config.max_ring_size / total
        counts = [max(1, math.floor(c * scale)) for c in counts]
    return counts


@dataclass(slots=True)
class _Points:
    """One backend's cached ring points."""

    hashes: list[int]  # point hashes in point order; a prefix serves smaller counts
    count: int = 0
    packed: tuple[int, ...] = ()  # the first ``count`` hashes packed with the slot, sorted


class RingHashPicker(Picker):
    __slots__ = ("_by_slot", "_ids", "_ring", "_rng")

    def __init__(self, ring: list[int], by_slot: list[Endpoint | None], rng: random.Random) -> None:
        self._ring = ring
        self._by_slot = by_slot
        self._ids = frozenset(e.id for e in by_slot if e is not None)
        self._rng = rng

    def pick(self, request: PickRequest) -> Endpoint | None:
        ring = self._ring
        if not ring:
            return None
        key = request.key
        point = stable_hash(key) if key else self._rng.getrandbits(_HASH_BITS)
        index = bisect_left(ring, point << _SLOT_BITS)
        size = len(ring)
        exclude = request.exclude_ids
        if exclude and sum(1 for i in exclude if i in self._ids) == len(self._ids):
            return None
        for step in range(size):  # ends at the first allowed point: one exists
            endpoint = self._by_slot[ring[(index + step) % size] & _SLOT_MASK]
            if endpoint is not None and endpoint.id not in exclude:
                return endpoint
        return None


class RingHash(Policy):
    name = "ring_hash"

    def __init__(
        self,
        rng: random.Random | None = None,
        clock: Clock | None = None,
        config: RingHashConfig | None = None,
    ) -> None:
        super().__init__(rng, clock)
        self.config = config or RingHashConfig()
        self._slots: dict[str, int] = {}
        self._points: dict[str, _Points] = {}

    def build(self, snapshot: Snapshot) -> Picker:
        endpoints = snapshot.endpoints
        self._forget_departed({e.id for e in endpoints})
        weights = [e.weight if e.weight > 0 else 1.0 for e in endpoints]  # 0 = "not given"
        by_slot: list[Endpoint | None] = [None] * (len(endpoints) + len(self._slots))
        runs: list[tuple[int, ...]] = []
        for endpoint, count in zip(endpoints, point_counts(weights, self.config), strict=True):
            slot = self._slot(endpoint.id)
            if slot >= len(by_slot):
                by_slot.extend([None] * (slot + 1 - len(by_slot)))
            by_slot[slot] = endpoint
            runs.append(self._packed(endpoint.id, slot, count))
        ring = sorted(chain.from_iterable(runs))
        return RingHashPicker(ring, by_slot, self.rng)

    def _forget_departed(self, live: set[str]) -> None:
        for backend_id in [i for i in self._slots if i not in live]:
            del self._slots[backend_id]
            self._points.pop(backend_id, None)

    def _slot(self, backend_id: str) -> int:
        """A small number, stable while the backend stays, reused after it leaves."""
        slot = self._slots.get(backend_id)
        if slot is None:
            taken = set(self._slots.values())
            slot = next(s for s in range(len(taken) + 1) if s not in taken)
            if slot > _SLOT_MASK:
                raise ValueError(f"ring_hash supports at most {_SLOT_MASK + 1} backends")
            self._slots[backend_id] = slot
        return slot

    def _packed(self, backend_id: str, slot: int, count: int) -> tuple[int, ...]:
        points = self._points.get(backend_id)
        if points is None:
            points = self._points[backend_id] = _Points(hashes=[])
        if points.count != count or not points.packed:
            for k in range(len(points.hashes), count):
                points.hashes.append(stable_hash(f"{backend_id}_{k}"))
            points.count = count
            points.packed = tuple(sorted((h << _SLOT_BITS) | slot for h in points.hashes[:count]))
        return points.packed
