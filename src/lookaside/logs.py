"""Logging set-up shared by every command: one line per event, ``key=value`` fields.

Log calls read ``log.info("registered id=%s service=%s", ...)``: a few words
naming the event, then ``key=value`` fields. Two output formats:

* ``text`` (default): ``2026-01-01 12:00:00,000 INFO lookaside.lb registered id=b1 ...``
* ``json``: one JSON object per line, for ``jq`` and log shippers, with stable
  field names: ``time``, ``level``, ``logger``, ``event`` (the leading words,
  e.g. ``registered``), ``message`` (the whole text line), then every
  ``key=value`` field of the message, with ``id`` named ``backend``, e.g.
  ``{"event": "registered", "backend": "b1", "service": "compute", ...}``.

Over-long values (a 5,000-character id someone sent) are shortened in both
formats by :class:`ShortenLongValues`, so one bad request cannot flood the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATS = ("text", "json")
#: Longest value logged as is; longer ones keep their start and say how long they were.
MAX_VALUE_CHARS = 160

#: ``key=`` at the start of a field (after a space); the value runs to the next one.
_FIELD = re.compile(r"(?:^|\s)([a-z_][a-z0-9_]*)=")
#: Field names renamed in JSON so every line calls a backend ``backend``.
_RENAMED = {"id": "backend"}


def shorten(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    if len(value) <= limit:
        return value
    return f"{value[: limit - 40]}...({len(value)} characters)"


class ShortenLongValues(logging.Filter):
    """Shorten over-long string arguments of a record before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                shorten(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        elif isinstance(record.msg, str) and not record.args:
            record.msg = shorten(record.msg, MAX_VALUE_CHARS * 4)
        return True


def parse_fields(message: str) -> tuple[str, dict[str, str]]:
    """``"registered id=b1 service=compute"`` -> ``("registered", {"id": "b1", ...})``.

    A value runs to the next `` key=``, so ``reason=lease expired (ttl 5s)`` keeps
    its spaces. A line without fields is all event.
    """
    matches = list(_FIELD.finditer(message))
    if not matches:
        return message.strip(), {}
    event = message[: matches[0].start()].strip()
    fields: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(message)
        fields[match.group(1)] = message[match.end() : end].strip()
    return event, fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record; see the module docstring for the field names."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, fields = parse_fields(message)
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "event": event,
        }
        for key, value in fields.items():
            line.setdefault(_RENAMED.get(key, key), value)
        line["message"] = message
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str = "INFO", log_format: str = "text") -> None:
    """Log to stderr at ``level`` (DEBUG shows per-request lines) in ``log_format``."""
    if log_format not in FORMATS:
        raise ValueError(f"--log-format: {log_format!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
    handler.addFilter(ShortenLongValues())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
