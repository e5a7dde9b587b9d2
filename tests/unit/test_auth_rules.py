"""Bearer metadata parsing and the LB's method-to-token rules, without sockets."""

from __future__ import annotations

import pytest

from lookaside.security.auth import (
    BACKEND_METHODS,
    CLIENT_METHODS,
    INVALID_TOKEN,
    MISSING_TOKEN,
    bearer_metadata,
    check_bearer,
    lb_auth_rules,
)
from lookaside.security.tokens import AuthTokens, Token
from lookaside.v1 import load_balancer_pb2 as pb

GOOD = Token("good-token")
OTHER = Token("other-token")


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, MISSING_TOKEN),
        ((), MISSING_TOKEN),
        ((("x-other", "Bearer good-token"),), MISSING_TOKEN),
        ((("authorization", "good-token"),), MISSING_TOKEN),
        ((("authorization", "Basic good-token"),), MISSING_TOKEN),
        ((("authorization", "Bearer "),), MISSING_TOKEN),
        ((("authorization", "Bearer wrong"),), INVALID_TOKEN),
        ((("authorization", "Bearer good-token-and-more"),), INVALID_TOKEN),
        ((("authorization", "Bearer good-toke"),), INVALID_TOKEN),
        ((("authorization", "Bearer good-token"), ("authorization", "Bearer x")), INVALID_TOKEN),
        ((("authorization", "Bearer good-token"),), None),
        ((("authorization", "bearer good-token"),), None),  # RFC 7235: scheme is case-blind
        ((("Authorization", "Bearer good-token"),), None),
        ((("authorization", b"Bearer good-token"),), None),
        ((("user-agent", "x"), ("authorization", "Bearer good-token")), None),
    ],
)
def test_check_bearer(metadata: tuple[tuple[str, str | bytes], ...] | None, expected: str) -> None:
    assert check_bearer(metadata, (GOOD,)) == expected


def test_any_accepted_token_passes() -> None:
    """Several accepted tokens let an operator rotate without downtime."""
    assert check_bearer(bearer_metadata(OTHER), (GOOD, OTHER)) is None
    assert check_bearer(bearer_metadata(Token("third")), (GOOD, OTHER)) == INVALID_TOKEN


def test_bearer_metadata_round_trips() -> None:
    assert bearer_metadata(GOOD) == (("authorization", "Bearer good-token"),)
    assert bearer_metadata(None) == ()
    assert check_bearer(bearer_metadata(GOOD), (GOOD,)) is None


def test_guarded_methods_exist_in_the_proto() -> None:
    """A typo in a method name would silently leave that RPC open."""
    service = pb.DESCRIPTOR.services_by_name["LoadBalancer"]
    real = {f"/{service.full_name}/{method.name}" for method in service.methods}
    assert set(BACKEND_METHODS) | set(CLIENT_METHODS) <= real
    assert not set(BACKEND_METHODS) & set(CLIENT_METHODS)


def test_every_load_balancer_rpc_has_a_token_group() -> None:
    """A new RPC must be placed in a group on purpose, or this test fails."""
    service = pb.DESCRIPTOR.services_by_name["LoadBalancer"]
    real = {f"/{service.full_name}/{method.name}" for method in service.methods}
    assert real == set(BACKEND_METHODS) | set(CLIENT_METHODS)


def test_lb_rules_follow_configured_tokens() -> None:
    backend, client = Token("backend"), Token("client")
    assert lb_auth_rules(AuthTokens()) == {}
    only_backend = lb_auth_rules(AuthTokens(backend=backend))
    assert set(only_backend) == set(BACKEND_METHODS)
    both = lb_auth_rules(AuthTokens(backend=backend, client=client))
    assert all(both[m] == (backend,) for m in BACKEND_METHODS)
    assert all(both[m] == (client,) for m in CLIENT_METHODS)
    assert both["/lookaside.v1.LoadBalancer/RegisterBackend"] == (backend,)
    assert both["/lookaside.v1.LoadBalancer/GetBackend"] == (client,)
