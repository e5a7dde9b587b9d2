"""Logging set-up shared by every command: one line per event, ``key=value`` fields."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure(level: str = "INFO") -> None:
    """Log to stderr at ``level`` (DEBUG shows per-request lines)."""
    logging.basicConfig(level=level.upper(), format=FORMAT, stream=sys.stderr, force=True)
