"""The servers' collector settings: start-up frozen, young objects collected less often."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from lookaside import gc_pauses


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_settle_freezes_what_start_up_made_and_raises_the_thresholds() -> None:
    gc.unfreeze()
    made_at_start_up = [{"n": n} for n in range(1000)]  # tracked containers
    tracked_before = len(gc.get_objects())
    gc_pauses.settle()
    assert gc.get_freeze_count() >= 1000
    assert len(gc.get_objects()) < tracked_before - 1000  # no longer scanned
    assert gc.get_threshold() == (
        gc_pauses.YOUNG_THRESHOLD,
        gc_pauses.MIDDLE_THRESHOLD,
        gc_pauses.OLD_THRESHOLD,
    )
    del made_at_start_up
