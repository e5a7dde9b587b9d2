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


def test_latency_sum_and_max_per_backend() -> None:
    stats = CallStats()
    for latency in (2.0, 7.5, 0.5):
        stats.record("a", True, latency)
    stats.record("b", False, 40.0)
    message = stats.drain("client-1", "echo")
    assert message is not None
    by_id = {s.backend_id: s for s in message.per_backend}
    assert by_id["a"].latency_ms_sum == 10.0 and by_id["a"].latency_ms_max == 7.5
    assert by_id["b"].latency_ms_sum == 40.0 and by_id["b"].calls_failed == 1
