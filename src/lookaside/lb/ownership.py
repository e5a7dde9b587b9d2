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
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Lease:
    caller: str  # the IP it was registered from (the seed-era rule)
    lease_id: str


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

    def check_register(self, backend_id: str, caller: str) -> None:
        """Refuse (``ALREADY_EXISTS``) a registration of a live id owned by another caller."""
        lease = self._leases.get(backend_id)
        if (
            lease is not None
            and lease.caller != caller
            and self._registry.get(backend_id) is not None
        ):
            raise AlreadyExists(
                f"backend id {backend_id!r} is held by a backend registered from another "
                "address until its lease expires"
            )

    def claim(self, backend_id: str, caller: str) -> str:
        """Record ``caller`` as the owner after a successful registration; the lease id.

        A renewal by the lease's own caller keeps the lease id it was given.
        """
        lease = self._leases.get(backend_id)
        if lease is None or lease.caller != caller:
            lease = self._leases[backend_id] = Lease(caller, self._mint())
        return lease.lease_id

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
            if lease_id != lease.lease_id:
                raise PermissionDenied(
                    f"backend {backend_id!r} is held by another lease; "
                    "this call names one that is not (or no longer) its own"
                )
        elif lease.caller != caller:
            raise PermissionDenied(
                f"backend {backend_id!r} was registered from another address; "
                "a backend may report for and deregister only itself"
            )

    def owner(self, backend_id: str) -> str | None:
        lease = self._leases.get(backend_id)
        return lease.caller if lease is not None else None

    def lease_id(self, backend_id: str) -> str | None:
        lease = self._leases.get(backend_id)
        return lease.lease_id if lease is not None else None
