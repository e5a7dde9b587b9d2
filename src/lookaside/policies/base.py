"""The policy interface: a long-lived *policy* per service builds short-lived *pickers*.

Modelled on grpc-go's ``balancer/base``: the policy reacts to membership
changes by building a new picker from an immutable :class:`Snapshot`;
``Picker.pick`` never blocks, never does I/O, and costs O(1) or O(log n).

Load reports are far more frequent than membership changes (every backend, every
second or faster), so rebuilding the picker on each one would make a report cost
O(n) and the LB's cost grow with the fleet. A report therefore goes to
:meth:`Policy.update` with the one endpoint that changed; policies that can
(``least_load``, ``p2c``, ``weighted_round_robin``) patch their picker in place
in O(1) or O(log n). The default rebuilds from the whole snapshot, so a new
policy works correctly before it is made incremental.

The one piece of state shared between pickers is the :class:`PickTracker`: the
picks the LB has handed out for each backend since that backend's last load
report. Load-aware policies add them (per unit of capacity) to the reported
load, so a burst of picks between two reports spreads out instead of piling
onto whichever backend reported lowest.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from lookaside.model import Endpoint, PickRequest

Clock = Callable[[], float]


class PickTracker:
    """Picks handed out per backend since its last load report."""

    __slots__ = ("_outstanding",)

    def __init__(self) -> None:
        self._outstanding: dict[str, int] = {}

    def record(self, backend_id: str) -> None:
        self._outstanding[backend_id] = self._outstanding.get(backend_id, 0) + 1

    def outstanding(self, backend_id: str) -> int:
        return self._outstanding.get(backend_id, 0)

    def reset(self, backend_id: str) -> None:
        """The backend just reported: its load figure now includes those picks."""
        self._outstanding.pop(backend_id, None)

    def forget(self, backend_id: str) -> None:
        self._outstanding.pop(backend_id, None)


def effective_load(endpoint: Endpoint, tracker: PickTracker) -> float:
    """Reported load plus the picks handed out since, per unit of capacity."""
    return endpoint.load + tracker.outstanding(endpoint.id) / endpoint.capacity


@dataclass(frozen=True)
class Snapshot:
    """The live, non-ejected backends of one service, in registration order."""

    endpoints: tuple[Endpoint, ...]
    tracker: PickTracker = field(default_factory=PickTracker)
    now: float = 0.0


class Picker(ABC):
    """Serves picks from one snapshot. Returns None only when every backend is excluded."""

    @abstractmethod
    def pick(self, request: PickRequest) -> Endpoint | None: ...


#: Produces the current snapshot on demand: only the default :meth:`Policy.update` needs it.
SnapshotSource = Callable[[], Snapshot]


class Policy(ABC):
    """One per service; builds a picker on membership changes, updates it on reports."""

    name: ClassVar[str]
    #: True when picks depend on load reports: then every report goes to :meth:`update`.
    uses_load: ClassVar[bool] = False

    def __init__(self, rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.rng = rng or random.Random()
        self.clock = clock

    @abstractmethod
    def build(self, snapshot: Snapshot) -> Picker: ...

    def update(self, picker: Picker, endpoint: Endpoint, snapshot: SnapshotSource) -> Picker:
        """One backend reported: ``endpoint`` is its new state. Returns the picker to use.

        The membership is the one ``picker`` was built for (joins and leaves go to
        :meth:`build`). The default rebuilds from ``snapshot()``, O(n); policies
        override it to patch ``picker`` in O(1) or O(log n), and must then pick
        as a rebuilt picker would (the unit tests check both against each other).
        """
        return self.build(snapshot())


class EmptyPicker(Picker):
    """Used while a service has no live backend."""

    def pick(self, request: PickRequest) -> Endpoint | None:
        return None


def first_allowed(
    endpoints: tuple[Endpoint, ...], start: int, exclude: frozenset[str]
) -> tuple[int, Endpoint] | None:
    """The first endpoint at or after ``start`` (cyclically) that is not excluded."""
    n = len(endpoints)
    for step in range(n):
        index = (start + step) % n
        if endpoints[index].id not in exclude:
            return index, endpoints[index]
    return None
