"""Which caller owns which backend id: the LB's rule against hijacking and impersonation.

**Every registration gets its own lease identity** (``RegisterResponse.lease_id``,
a random 128-bit id minted when the id is registered anew; a renewal by the
same caller keeps it). Calls that act on the registration carry it
(``LoadReport.lease_id``, ``DeregisterRequest.lease_id``); one naming another
lease of the same backend id is refused with ``PERMISSION_DENIED`` and changes
nothing, whoever sends it and from wherever. So a second process that starts
with a live backend's id, is refused (``ALREADY_EXISTS``) and later stops can
never undo the live one, even from the same host.

Calls without a lease id (clients generated from the seed-era fields) keep
working under the older rule: **the IP address a backend id was registered
from owns that id for as long as its lease lives.** While it lives,

* a ``RegisterBackend`` for the id from another IP is refused with
  ``ALREADY_EXISTS`` (no takeover, even with the same advertised address);
* ``ReportLoad``, ``StreamLoad`` and ``Deregister`` for the id from another IP
  are refused with ``PERMISSION_DENIED`` (a backend speaks only for itself).

Once the lease ends (deregistration, a broken load stream, expiry) the id is
free again. The caller's IP is the TCP peer address gRPC reports
(``context.peer()``), not anything the caller writes in the message.

Why the *registering* IP and not the advertised ``address``: the address is
where clients dial, which behind NAT, a container port mapping, a host name or
``--advertise-host`` is often not the address the LB sees calls come from.

Limits of the IP rule: callers behind one IP (the same host, the same NAT
gateway) are one owner to it and can act for each other's ids; lease ids close
that gap for every client that sends them. The bearer token and mutual TLS
decide *who may register at all*; these rules only keep registered callers
from touching ids that are not theirs.

**Leases are shared by LB replicas.** The lease id is a bearer secret, so a
shared store keeps only its verifier (SHA-256 of it; the id is 128 random
bits, so no salt is needed) and the registering IP, with the membership
record. Every replica adopts them from its watch (:meth:`Owners.adopt`), so a
backend that fails over keeps its lease id everywhere: its calls with that id
are accepted by any replica, its renewal (``BackendInfo.lease_id``) keeps it,
and every replica refuses another caller's calls for the id exactly as the
replica that registered it would.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from lookaside.errors import AlreadyExists, PermissionDenied
from lookaside.lb.registry import Change, Registry


def peer_ip(peer: str) -> str:
    """The caller's IP from a gRPC peer string, normalised; other peers are returned whole.

    ``ipv4:10.0.0.1:5000`` -> ``10.0.0.1``; ``ipv6:%5B::1%5D:5000`` or
    ``ipv6:[::1]:5000`` -> ``::1``; an IPv4-mapped IPv6 address becomes the IPv4
    one, so a dual-stack listener sees one caller as one address. Anything else
    (``unix:...``) is its own identity.
    """
    scheme, _, rest = peer.partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return peer
    host = unquote(rest).rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host.partition("%")[0])  # drop an IPv6 zone
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def new_lease_id() -> str:
    return secrets.token_hex(16)


def verifier(lease_id: str) -> str:
    """What a shared store keeps of a lease id: enough to check one, not to forge one."""
    return hashlib.sha256(lease_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Lease:
    caller: str  # the IP it was registered from (the seed-era rule)
    verifier: str  # :func:`verifier` of the lease id
    lease_id: str = ""  # the id itself, where this replica minted it or was shown it

    @classmethod
    def minted(cls, caller: str, lease_id: str) -> Lease:
        return cls(caller, verifier(lease_id), lease_id)

    def admits(self, lease_id: str) -> bool:
        if self.lease_id:
            return hmac.compare_digest(lease_id, self.lease_id)
        return hmac.compare_digest(verifier(lease_id), self.verifier)


class Owners:
    """Backend id -> its current lease (caller IP and lease id), in step with the registry."""

    def __init__(self, registry: Registry, mint: Callable[[], str] = new_lease_id) -> None:
        self._registry = registry
        self._mint = mint
        self._leases: dict[str, Lease] = {}
        registry.subscribe(self._on_change)

    def _on_change(self, service: str, backend_id: str, change: Change) -> None:
        if change is Change.LEFT:
            self._leases.pop(backend_id, None)

    def _live(self, backend_id: str) -> Lease | None:
        lease = self._leases.get(backend_id)
        return lease if lease is not None and self._registry.get(backend_id) is not None else None

    def lease_for(self, backend_id: str, caller: str, presented: str = "") -> Lease:
        """The lease a registration of ``backend_id`` by ``caller`` gets, before it is written.

        A live lease is kept by a renewal that names it (``presented``) or, naming
        none, comes from the caller that registered it; a new id is minted when the
        registration is new, or when a replica that never saw the id renews it for
        its own caller. Any other caller is refused with ``ALREADY_EXISTS``.
        """
        lease = self._live(backend_id)
        if lease is None:
            return Lease.minted(caller, self._mint())
        if presented:
            if lease.admits(presented):
                return Lease(lease.caller, lease.verifier, presented)
            held_by = "with another lease"
        elif lease.caller == caller:
            return lease if lease.lease_id else Lease.minted(caller, self._mint())
        else:
            held_by = "from another address"
        raise AlreadyExists(
            f"backend id {backend_id!r} is held by a backend registered {held_by} "
            "until its lease expires"
        )

    def check_register(self, backend_id: str, caller: str, presented: str = "") -> None:
        """Refuse (``ALREADY_EXISTS``) a registration of a live id owned by another caller."""
        self.lease_for(backend_id, caller, presented)

    def claim(self, backend_id: str, lease: Lease) -> str:
        """Record ``lease`` (from :meth:`lease_for`) once the registration is written; its id."""
        self._leases[backend_id] = lease
        return lease.lease_id

    def adopt(self, backend_id: str, caller: str, lease_verifier: str) -> None:
        """A lease a shared store holds for the id (another replica's registration, or ours)."""
        current = self._leases.get(backend_id)
        if current is not None and current.verifier == lease_verifier:
            return  # known already (perhaps with the id itself)
        self._leases[backend_id] = Lease(caller, lease_verifier)

    def check_owner(self, backend_id: str, caller: str, lease_id: str = "") -> None:
        """Refuse (``PERMISSION_DENIED``) a report or deregistration for another lease.

        With ``lease_id`` it must be the current lease's; without one (seed-era
        callers) the caller's IP must be the one that registered. Unknown ids
        pass: the registry answers them with ``NOT_FOUND``.
        """
        lease = self._leases.get(backend_id)
        if lease is None:
            return
        if lease_id:
            if not lease.admits(lease_id):
                raise PermissionDenied(
                    f"backend {backend_id!r} is held by another lease; "
                    "this call names one that is not (or no longer) its own"
                )
            if not lease.lease_id:  # shown the id: check it by value from now on
                self._leases[backend_id] = Lease(lease.caller, lease.verifier, lease_id)
        elif lease.caller != caller:
            raise PermissionDenied(
                f"backend {backend_id!r} was registered from another address; "
                "a backend may report for and deregister only itself"
            )

    def owner(self, backend_id: str) -> str | None:
        lease = self._leases.get(backend_id)
        return lease.caller if lease is not None else None

    def lease(self, backend_id: str) -> Lease | None:
        return self._leases.get(backend_id)

    def lease_id(self, backend_id: str) -> str | None:
        lease = self._leases.get(backend_id)
        return lease.lease_id if lease is not None else None
