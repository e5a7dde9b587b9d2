"""For tests of the LB's admin port: find its URL in the LB's log, fetch from it."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from lookaside.procs import ServerProcess
from tests.integration.harness import wait_until

ADMIN_URL = re.compile(r"admin on (http://\S+)")


def admin_url(lb: ServerProcess, timeout: float = 20.0) -> str:
    """The admin port's base URL (``http://127.0.0.1:PORT/``), from the LB's log line."""
    wait_until(lambda: ADMIN_URL.search(lb.log_text()) is not None, timeout, "the admin line")
    match = ADMIN_URL.search(lb.log_text())
    assert match is not None
    return match.group(1)


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def state(base: str) -> dict[str, Any]:
    status, body = get(base + "api/state")
    assert status == 200, body
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def backend_ids(base: str) -> set[str]:
    return {b["id"] for service in state(base)["services"] for b in service["backends"]}
