"""Load-balancing policies, one small module each, behind :class:`Policy`.

``POLICIES`` maps the ``--policy`` name to the class; :func:`create` builds one.
"""

from __future__ import annotations

import random

from lookaside.policies.base import (
    Clock,
    EmptyPicker,
    Picker,
    PickTracker,
    Policy,
    Snapshot,
    effective_load,
)
from lookaside.policies.least_load import LeastLoad
from lookaside.policies.pick_first import PickFirst
from lookaside.policies.round_robin import RoundRobin

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls for cls in (PickFirst, RoundRobin, LeastLoad)
}


def create(name: str, rng: random.Random | None = None, clock: Clock | None = None) -> Policy:
    """A fresh policy instance for one service. ``ValueError`` on an unknown name."""
    try:
        cls = POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}; choose one of: {known}") from None
    return cls(rng=rng, clock=clock)


__all__ = [
    "POLICIES",
    "EmptyPicker",
    "PickTracker",
    "Picker",
    "Policy",
    "Snapshot",
    "create",
    "effective_load",
]
