"""What the etcd store writes: records and load batches survive the trip, bad ones are refused."""

from __future__ import annotations

import json

import pytest

from lookaside.lb.store import codec
from lookaside.model import Endpoint, LoadMetrics, ServingState


def test_a_backend_record_round_trips_without_this_replicas_clock() -> None:
    endpoint = Endpoint("b1", "10.0.0.7", 7001, "search", capacity=8, weight=2.5, load=0.25,
                        registered_at=123.0, reported_at=124.0)  # fmt: skip
    back = codec.decode_backend(codec.encode_backend(codec.BackendRecord(endpoint, "lb-a")))
    assert back.holder == "lb-a"
    assert back.endpoint == Endpoint("b1", "10.0.0.7", 7001, "search", 8, 2.5, load=0.25)


def test_a_record_keeps_its_owner_and_lease_verifier_never_an_id() -> None:
    record = codec.BackendRecord(Endpoint("b1", "h", 1), "lb-a", "10.0.0.7", "ab" * 32)
    value = codec.encode_backend(record)
    assert codec.decode_backend(value) == record
    assert json.loads(value)["lease"] == "ab" * 32
    old = codec.BackendRecord(Endpoint("b1", "h", 1), "lb-a")  # from a replica before leases
    assert b"lease" not in codec.encode_backend(old)
    assert codec.decode_backend(codec.encode_backend(old)) == old


def test_fields_a_newer_replica_wrote_are_skipped() -> None:
    value = json.dumps(
        {"endpoint": {"id": "b", "address": "h", "port": 1, "zone": "eu-1"}, "holder": "x"}
    )
    assert codec.decode_backend(value.encode()).endpoint == Endpoint("b", "h", 1)


@pytest.mark.parametrize("value", [b"", b"[]", b'{"endpoint": {}}', b'{"holder": "x"}', b"\xff"])
def test_what_is_not_a_record_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="not a backend record"):
        codec.decode_backend(value)


def test_load_batches_carry_age_and_metrics() -> None:
    metrics = LoadMetrics(cpu_utilization=0.5, named={"queue": 3.0})
    entries = [
        codec.LoadEntry("a", 0.5, 0.2, metrics),
        codec.LoadEntry("b", 0.0, 1.0, LoadMetrics(), ServingState.DRAINING),
    ]
    assert codec.decode_loads(codec.encode_loads(entries)) == entries


def test_a_load_batch_stays_compact() -> None:
    entries = [codec.LoadEntry(f"backend-{n:04d}", 0.5, 0.25, LoadMetrics()) for n in range(1000)]
    assert len(codec.encode_loads(entries)) < 40 * 1000  # far below etcd's 1.5 MiB request cap


@pytest.mark.parametrize("value", [b"{", b'{"a": 1}', b'{"a": [1, 2]}', b"[]"])
def test_what_is_not_a_load_batch_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="not a load batch"):
        codec.decode_loads(value)
