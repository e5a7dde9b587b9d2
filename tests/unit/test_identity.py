"""Caller addresses from gRPC peer strings, and who owns a backend id (no sockets)."""

from __future__ import annotations

import pytest

from lookaside.errors import AlreadyExists, PermissionDenied
from lookaside.lb.ownership import Lease, Owners, peer_ip, verifier
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
    lease = owners.lease_for("b1", "10.0.0.1")
    registry.register(Registration("b1", "10.0.0.1", 1, "compute"))
    owners.claim("b1", lease)

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
    assert owners.claim("b1", owners.lease_for("b1", "127.0.0.1")) == "lease-1"
    assert owners.claim("b1", owners.lease_for("b1", "127.0.0.1")) == "lease-1"  # renewal
    renewal = owners.lease_for("b1", "10.9.9.9", presented="lease-1")  # naming it, from anywhere
    assert renewal.lease_id == "lease-1"
    with pytest.raises(AlreadyExists, match="another lease"):
        owners.lease_for("b1", "127.0.0.1", presented="lease-0")  # same address, other lease

    owners.check_owner("b1", "127.0.0.1", "lease-1")
    owners.check_owner("b1", "10.9.9.9", "lease-1")  # the lease, not the address, decides
    with pytest.raises(PermissionDenied, match="another lease"):
        owners.check_owner("b1", "127.0.0.1", "lease-0")  # same address, other lease
    owners.check_owner("b1", "127.0.0.1")  # seed-era caller: the address rule

    registry.deregister("b1")
    assert owners.lease_id("b1") is None
    assert owners.lease_for("b1", "127.0.0.1", presented="lease-1").lease_id == "lease-2"
    registry.register(Registration("b1", "127.0.0.1", 1, "compute"))
    owners.claim("b1", Lease.minted("127.0.0.1", "lease-2"))
    with pytest.raises(PermissionDenied):
        owners.check_owner("b1", "127.0.0.1", "lease-1")  # the old lease acts on nothing


def test_a_lease_adopted_from_the_store_is_checked_by_its_verifier() -> None:
    """What a replica that did not register the id knows: the caller and a hash, not the id."""
    registry = InMemoryRegistry(ttl=5)
    owners = Owners(registry, mint=lambda: "minted-here")
    registry.register(Registration("b1", "10.0.0.1", 1, "compute"))
    owners.adopt("b1", "10.0.0.1", verifier("lease-a"))
    assert owners.lease_id("b1") == ""  # the store never had the id itself
    owners.check_owner("b1", "10.0.0.7", "lease-a")  # the original id works here too
    assert owners.lease_id("b1") == "lease-a"  # shown it once: checked by value since
    with pytest.raises(PermissionDenied, match="another lease"):
        owners.check_owner("b1", "10.0.0.1", "lease-b")
    with pytest.raises(PermissionDenied, match="another address"):
        owners.check_owner("b1", "10.0.0.2")  # seed-era caller from elsewhere
    with pytest.raises(AlreadyExists, match="another address"):
        owners.lease_for("b1", "10.0.0.2")
    assert owners.lease_for("b1", "10.0.0.2", presented="lease-a").lease_id == "lease-a"

    registry.register(Registration("b2", "10.0.0.1", 2, "compute"))
    owners.adopt("b2", "10.0.0.1", verifier("lease-c"))
    renewal = owners.lease_for("b2", "10.0.0.1")  # its own caller, naming no lease
    assert renewal == Lease.minted("10.0.0.1", "minted-here")  # a new one: the id is unknown here
    owners.adopt("b2", "10.0.0.1", renewal.verifier)
    owners.claim("b2", renewal)
    owners.adopt("b2", "10.0.0.1", renewal.verifier)  # the store echoing our own write
    assert owners.lease_id("b2") == "minted-here"
