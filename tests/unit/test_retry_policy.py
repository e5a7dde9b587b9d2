"""gRFC A6 retry policies: parsing, lookup per method, back-off bounds, transparent failures."""

from __future__ import annotations

import json
import random

import grpc
import pytest

from lookaside.client.retry import MAX_ATTEMPTS_LIMIT, RetryPolicies, RetryPolicy, is_transparent

POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE", "aborted"],
}


def config(*entries: dict[str, object]) -> str:
    return json.dumps({"methodConfig": list(entries)})


def test_method_beats_service_beats_default() -> None:
    method_only = {**POLICY, "maxAttempts": 2}
    service_wide = {**POLICY, "maxAttempts": 3}
    everything = {**POLICY, "maxAttempts": 4}
    policies = RetryPolicies(
        config(
            {"name": [{}], "retryPolicy": everything},
            {"name": [{"service": "pkg.Echo"}], "retryPolicy": service_wide},
            {"name": [{"service": "pkg.Echo", "method": "Say"}], "retryPolicy": method_only},
        )
    )
    assert policies.for_method("/pkg.Echo/Say").max_attempts == 2  # type: ignore[union-attr]
    assert policies.for_method("/pkg.Echo/Count").max_attempts == 3  # type: ignore[union-attr]
    assert policies.for_method("/other.Svc/X").max_attempts == 4  # type: ignore[union-attr]


def test_no_config_or_no_policy_means_no_retries() -> None:
    assert RetryPolicies().for_method("/pkg.Echo/Say") is None
    no_retry = RetryPolicies({"methodConfig": [{"name": [{"service": "pkg.Echo"}]}]})
    assert no_retry.for_method("/pkg.Echo/Say") is None


def test_parsed_fields_and_the_cap_on_attempts() -> None:
    policy = RetryPolicy.from_json({**POLICY, "maxAttempts": 9, "perAttemptRecvTimeout": "0.25s"})
    assert policy.max_attempts == MAX_ATTEMPTS_LIMIT
    assert policy.initial_backoff == 0.1 and policy.max_backoff == 1.0
    assert policy.retryable_codes == {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}
    assert policy.per_attempt_timeout == 0.25


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"maxAttempts": 1}, "two or greater"),
        ({"initialBackoff": "0s"}, "greater than zero"),
        ({"maxBackoff": "fast"}, "duration"),
        ({"retryableStatusCodes": []}, "must not be empty"),
        ({"retryableStatusCodes": ["NOPE"]}, "not a gRPC status code"),
        ({"retryableStatusCodes": ["OK"]}, "not a gRPC status code"),
    ],
)
def test_bad_policies_are_refused_with_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy.from_json({**POLICY, **change})


def test_missing_field_is_named() -> None:
    raw = dict(POLICY)
    del raw["maxBackoff"]
    with pytest.raises(ValueError, match="maxBackoff"):
        RetryPolicy.from_json(raw)


def test_backoff_grows_and_stays_under_the_ceiling() -> None:
    policy = RetryPolicy.from_json(POLICY)
    rng = random.Random(5)
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        delays = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used


def test_transparent_only_when_no_server_saw_the_call() -> None:
    unavailable = grpc.StatusCode.UNAVAILABLE
    refused = (
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
        "Failed to connect to remote host: Connection refused"
    )
    assert is_transparent(unavailable, refused)
    assert not is_transparent(unavailable, "Stream removed (Socket closed)")
    assert not is_transparent(grpc.StatusCode.INTERNAL, refused)
    assert not is_transparent(unavailable, None)
