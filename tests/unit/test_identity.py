"""Caller addresses from gRPC peer strings, and who owns a backend id (no sockets)."""

from __future__ import annotations

import pytest

from lookaside.errors import AlreadyExists, PermissionDenied
from lookaside.lb.ownership import Owners, peer_ip
from lookaside.lb.registry import InMemoryRegistry, Registration


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:10.0.0.1:5000", "10.0.0.1"),
        ("ipv6:%5B::1%5D:5000", "::1"),
        ("ipv6:[::1]:5000", "::1"),
        ("ipv6:[::ffff:127.0.0.1]:5000", "127.0.0.1"),
        ("ipv6:[fe80::1%25eth0]:5000", "fe80::1"),
        ("ipv6:[2001:DB8::0001]:1", "2001:db8::1"),
        ("unix:/tmp/sock", "unix:/tmp/sock"),
        ("ipv4:not-an-ip:1", "ipv4:not-an-ip:1"),
    ],
)
def test_peer_ip(peer: str, ip: str) -> None:
    assert peer_ip(peer) == ip


def test_owner_rules_follow_the_lease() -> None:
    now = [0.0]
    registry = InMemoryRegistry(ttl=5, clock=lambda: now[0])
    owners = Owners(registry)
    owners.check_register("b1", "10.0.0.1")
    registry.register(Registration("b1", "10.0.0.1", 1, "compute"))
    owners.claim("b1", "10.0.0.1")

    owners.check_register("b1", "10.0.0.1")  # renewal by the owner
    owners.check_owner("b1", "10.0.0.1")
    with pytest.raises(AlreadyExists):
        owners.check_register("b1", "10.0.0.2")
    with pytest.raises(PermissionDenied):
        owners.check_owner("b1", "10.0.0.2")
    owners.check_owner("ghost", "10.0.0.2")  # unknown ids are the registry's NOT_FOUND

    now[0] = 6.0
    assert [e.id for e in registry.expire()] == ["b1"]
    assert owners.owner("b1") is None
    owners.check_register("b1", "10.0.0.2")  # free again


def test_a_lease_id_names_one_registration() -> None:
    now = [0.0]
    registry = InMemoryRegistry(ttl=5, clock=lambda: now[0])
    minted = iter(["lease-1", "lease-2"])
    owners = Owners(registry, mint=lambda: next(minted))
    registry.register(Registration("b1", "127.0.0.1", 1, "compute"))
    assert owners.claim("b1", "127.0.0.1") == "lease-1"
    assert owners.claim("b1", "127.0.0.1") == "lease-1"  # a renewal keeps it

    owners.check_owner("b1", "127.0.0.1", "lease-1")
    owners.check_owner("b1", "10.9.9.9", "lease-1")  # the lease, not the address, decides
    with pytest.raises(PermissionDenied, match="another lease"):
        owners.check_owner("b1", "127.0.0.1", "lease-0")  # same address, other lease
    owners.check_owner("b1", "127.0.0.1")  # seed-era caller: the address rule

    registry.deregister("b1")
    assert owners.lease_id("b1") is None
    registry.register(Registration("b1", "127.0.0.1", 1, "compute"))
    assert owners.claim("b1", "127.0.0.1") == "lease-2"
    with pytest.raises(PermissionDenied):
        owners.check_owner("b1", "127.0.0.1", "lease-1")  # the old lease acts on nothing
