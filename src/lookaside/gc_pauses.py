"""Short garbage-collector pauses for the long-running servers (LB, backend, agent).

CPython's cyclic collector stops the event loop while it scans; a full
(oldest-generation) collection scans every tracked object. An LB holding
2,000 load streams tracks about 220,000 objects, 50,000 of them from imports
alone, and a full collection of them took 60 to 280 ms here: with the default
thresholds it came every few seconds while reports streamed in, and it was
the GetBackend p99 (40 to 800 ms across runs while ingesting 2,000 reports/s).

Two standard measures (CPython's ``gc`` documentation, ``gc.freeze``):

* what start-up made (modules, classes, descriptors, the server itself) is
  collected once and then frozen: it lives as long as the process, so no later
  collection scans it again;
* a first-generation threshold of :data:`YOUNG_THRESHOLD` allocations instead of
  700: most per-RPC objects die young between two collections, so far fewer are
  promoted, and full collections (still proportional to the live streams)
  come a minute or more apart instead of seconds (one in 90 s at 2,000
  reports/s, 54 ms). Cyclic garbage waits a little longer
  to be freed, a few megabytes at most.

With both, GetBackend p99 while ingesting 2,000 reports/s fell to about 7 ms
(``lookaside bench-lb-cost``); README's "Costs at scale" has the figures.
"""

from __future__ import annotations

import gc

#: Allocations (net of frees) between two youngest-generation collections (CPython: 700).
YOUNG_THRESHOLD = 20_000
#: Younger collections between two of the next generation (CPython: 10 and 10).
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 50


def settle() -> None:
    """Freeze what start-up made and raise the thresholds; call once, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)


__all__ = ["settle"]
