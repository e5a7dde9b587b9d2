"""``HOST:PORT`` and lists of LB replicas, parsed once and checked.

Every ``--lb``, ``--target`` and ``HOST:PORT`` a user types goes through
:func:`host_port`, so a port outside 1..65535 is refused with a message that
names the flag instead of wrapping modulo 65536 inside gRPC.

Several LB replicas are written ``a:1,b:2,c:3``. :func:`grpc_target` turns
such a list into one gRPC target (``ipv4:`` / ``ipv6:`` scheme, gRFC A14
naming) served by the ``pick_first`` policy with a shuffled address list
(gRFC A62): each process pins one replica, processes spread over them, and
when the one in use dies gRPC moves on to the next that answers.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass

from lookaside import validation
from lookaside.errors import InvalidArgument

#: The port an LB listens on unless told otherwise; ``--lb HOST`` without a port dials it.
DEFAULT_LB_PORT = 50051

#: The service config for a channel to several LB replicas (gRFC A62 pick_first).
REPLICAS_SERVICE_CONFIG = json.dumps(
    {"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": True}}]}
)


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def port_number(text: str | int, what: str = "port", allow_zero: bool = False) -> int:
    """A port from a flag; ``allow_zero`` for listening ports (0 = pick a free one)."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: {text!r} is not a port number") from None
    low = 0 if allow_zero else 1
    if not low <= value <= 65535:
        raise ValueError(f"{what}: {value} is outside {low}..65535")
    return value


def host_port(text: str, what: str = "address", default_port: int | None = None) -> HostPort:
    """``host:port`` or ``[v6]:port``, with the port in 1..65535; ``ValueError`` names ``what``.

    With ``default_port``, a bare ``host`` (or ``[v6]``) gets that port.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if sep and not rest and default_port is not None:
            rest = f":{default_port}"
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{what}: {text!r} is not [IPv6]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep and default_port is not None and text:
            host, sep, port_text = text, ":", str(default_port)
        if not sep or not host:
            raise ValueError(f"{what}: {text!r} is not HOST:PORT")
        if ":" in host:
            raise ValueError(f"{what}: {text!r}: write an IPv6 address as [ADDRESS]:PORT")
    try:
        validation.address(host, what)
    except InvalidArgument as error:
        raise ValueError(str(error)) from None
    return HostPort(host, port_number(port_text, what))


def lb_addresses(
    text: str, what: str = "--lb", default_port: int | None = None
) -> tuple[HostPort, ...]:
    """One LB address or several, comma-separated (``a:1,b:2``); with ``default_port``,
    a bare host gets it."""
    parts = [part for part in (p.strip() for p in text.split(",")) if part]
    if not parts:
        raise ValueError(f"{what}: no address given")
    addresses = tuple(host_port(part, what, default_port) for part in parts)
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"{what}: {text!r} names the same address twice")
    return addresses


def lb_target(text: str, what: str = "--lb") -> str:
    """A ``--lb`` value checked and normalised (``127.0.0.1`` -> ``127.0.0.1:50051``)."""
    return ",".join(str(address) for address in lb_addresses(text, what, DEFAULT_LB_PORT))


def check_resolves(text: str, what: str = "--lb") -> None:
    """Every host in ``text`` resolves now: a name that does not is a typo, not an outage."""
    for address in lb_addresses(text, what):
        try:
            ipaddress.ip_address(address.host)
            continue
        except ValueError:
            pass
        try:
            socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise ValueError(
                f"{what}: cannot resolve {address.host!r} ({error.strerror})"
            ) from None


def _ip(host: str, port: int) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ValueError(f"cannot resolve {host!r}: {error.strerror}") from None
    return str(infos[0][4][0])


def grpc_target(text: str, what: str = "--lb") -> str:
    """The gRPC target for ``text``: itself if one address, else an ``ipv4:``/``ipv6:`` list."""
    addresses = lb_addresses(text, what)
    if len(addresses) == 1:
        return str(addresses[0])
    ips = [HostPort(_ip(a.host, a.port), a.port) for a in addresses]
    families = {ipaddress.ip_address(a.host).version for a in ips}
    if len(families) != 1:
        raise ValueError(f"{what}: {text!r} mixes IPv4 and IPv6 addresses")
    scheme = "ipv6" if families == {6} else "ipv4"
    return f"{scheme}:" + ",".join(str(a) for a in ips)


#: gRPC name schemes (gRFC A14 and its successors); a target with one is passed through.
GRPC_SCHEMES = ("ipv4:", "ipv6:", "dns:", "unix:", "unix-abstract:", "vsock:", "xds:")


def is_replica_list(target: str) -> bool:
    """``a:1,b:2`` typed by a user, as opposed to a gRPC target such as ``ipv4:a,b``."""
    return "," in target and not target.startswith(GRPC_SCHEMES)
