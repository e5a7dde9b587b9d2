"""Load-balancing policies, one small module each, behind :class:`Policy`.

``POLICIES`` maps the ``--policy`` name to the class; :func:`create` builds one.

Options: ``create(name, rng, clock, **options)`` passes ``options`` to the
policy's constructor as keywords. The policies that take any are
``least_load`` (``tolerance``), ``weighted_round_robin`` (``config=WrrConfig(...)``),
``ring_hash`` (``config=RingHashConfig(...)``), ``prequal`` (``config=PrequalConfig(...)``)
and ``peak_ewma`` (``config=PeakEwmaConfig(...)``); every option has a documented
default, so ``create(name)`` alone always works.
"""

from __future__ import annotations

import random
from typing import Any

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
from lookaside.policies.p2c import PowerOfTwoChoices
from lookaside.policies.peak_ewma import PeakEwma, PeakEwmaConfig
from lookaside.policies.pick_first import PickFirst
from lookaside.policies.prequal import Prequal, PrequalConfig
from lookaside.policies.ring_hash import RingHash, RingHashConfig
from lookaside.policies.round_robin import RoundRobin
from lookaside.policies.weighted_round_robin import WeightedRoundRobin, WrrConfig

POLICIES: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        PickFirst,
        RoundRobin,
        LeastLoad,
        PowerOfTwoChoices,
        WeightedRoundRobin,
        RingHash,
        Prequal,
        PeakEwma,
    )
}


def create(
    name: str, rng: random.Random | None = None, clock: Clock | None = None, **options: Any
) -> Policy:
    """A fresh policy instance for one service.

    ``ValueError`` on an unknown name or an option the policy does not take.
    """
    try:
        cls = POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown policy {name!r}; choose one of: {known}") from None
    try:
        return cls(rng=rng, clock=clock, **options)
    except TypeError as exc:
        raise ValueError(f"bad options for policy {name!r}: {exc}") from None


__all__ = [
    "POLICIES",
    "EmptyPicker",
    "PeakEwmaConfig",
    "PickTracker",
    "Picker",
    "Policy",
    "PrequalConfig",
    "RingHashConfig",
    "Snapshot",
    "WrrConfig",
    "create",
    "effective_load",
]
