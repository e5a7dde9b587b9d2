"""CallStats: counts per backend, drained into one message."""

from __future__ import annotations

from lookaside.client.stats import CallStats


def test_counts_are_drained_once() -> None:
    stats = CallStats()
    for ok in (True, True, False):
        stats.record("a", ok)
    stats.record("b", False)
    message = stats.drain("client-1", "compute")
    assert message is not None
    assert message.client_id == "client-1" and message.service_name == "compute"
    counts = {s.backend_id: (s.calls_finished, s.calls_failed) for s in message.per_backend}
    assert counts == {"a": (3, 1), "b": (1, 1)}
    assert message.interval_seconds >= 0
    assert stats.drain("client-1", "compute") is None
