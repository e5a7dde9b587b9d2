"""Which caller owns which backend id: the LB's rule against hijacking and impersonation.

The rule: **the IP address a backend id was registered from owns that id for as
long as its lease lives.** While it lives,

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
Binding to the caller's own IP works in all those set-ups and needs no DNS.

Limits: callers behind one IP (the same host, the same NAT gateway) are one
owner to the LB and can act for each other's ids; the peer address is only as
trustworthy as the network path (use TLS). The bearer token and mutual TLS
decide *who may register at all*; this rule only keeps registered callers
from touching ids that are not theirs.
"""

from __future__ import annotations

import ipaddress
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


class Owners:
    """Backend id -> the caller IP that registered it, kept in step with the registry."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._owner: dict[str, str] = {}
        registry.subscribe(self._on_change)

    def _on_change(self, service: str, backend_id: str, change: Change) -> None:
        if change is Change.LEFT:
            self._owner.pop(backend_id, None)

    def check_register(self, backend_id: str, caller: str) -> None:
        """Refuse (``ALREADY_EXISTS``) a registration of a live id owned by another caller."""
        owner = self._owner.get(backend_id)
        if owner is not None and owner != caller and self._registry.get(backend_id) is not None:
            raise AlreadyExists(
                f"backend id {backend_id!r} is held by a backend registered from another "
                "address until its lease expires"
            )

    def claim(self, backend_id: str, caller: str) -> None:
        """Record ``caller`` as the owner after a successful registration."""
        self._owner[backend_id] = caller

    def check_owner(self, backend_id: str, caller: str) -> None:
        """Refuse (``PERMISSION_DENIED``) a report or deregistration by another caller.

        Unknown ids pass: the registry answers them with ``NOT_FOUND``.
        """
        owner = self._owner.get(backend_id)
        if owner is not None and owner != caller:
            raise PermissionDenied(
                f"backend {backend_id!r} was registered from another address; "
                "a backend may report for and deregister only itself"
            )

    def owner(self, backend_id: str) -> str | None:
        return self._owner.get(backend_id)
