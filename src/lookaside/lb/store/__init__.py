"""Where the LB's membership lives: in this process (default) or in etcd, shared by replicas.

:func:`open_store` picks the store for a :class:`StoreConfig`. The etcd module
(and its client library) is imported only when an etcd store is asked for.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from lookaside.lb.registry import InMemoryRegistry
from lookaside.lb.store.base import Store, StoreUnavailable
from lookaside.lb.store.config import StoreConfig
from lookaside.lb.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoreConfig", "StoreUnavailable", "open_store"]


def open_store(
    config: StoreConfig,
    view: InMemoryRegistry,
    clock: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
) -> Store:
    """The store ``config`` names, feeding ``view``."""
    if not config.shared:
        return MemoryStore(view)
    from lookaside.lb.store.etcd import EtcdStore

    return EtcdStore(view, config, clock, rng)
