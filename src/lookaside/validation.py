"""Input checks for every field a caller controls.

Each check raises :class:`~lookaside.errors.InvalidArgument` naming the field,
so the servicer can answer ``INVALID_ARGUMENT`` with a useful message and leave
the registry untouched.
"""

from __future__ import annotations

import ipaddress
import math
import re

from lookaside.errors import InvalidArgument
from lookaside.model import DEFAULT_SERVICE

MAX_ID_LENGTH = 128
MAX_SERVICE_LENGTH = 253
MAX_CAPACITY = 100_000
MAX_LOAD = 1e9
MAX_NAMED_METRICS = 64

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]*$")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_HOST_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def backend_id(value: str, field: str = "id") -> str:
    """1..128 characters: letters, digits and ``._:@/+=-``, starting alphanumeric."""
    if not value:
        raise InvalidArgument(field, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} characters, the limit is {MAX_ID_LENGTH}")
    if not _ID_RE.match(value):
        raise InvalidArgument(
            field, f"{value!r} may hold only letters, digits and ._:@/+=- (alphanumeric first)"
        )
    return value


def service_name(value: str, field: str = "service_name") -> str:
    """Empty means the default service; otherwise a DNS-like name of at most 253 chars."""
    if not value:
        return DEFAULT_SERVICE
    if len(value) > MAX_SERVICE_LENGTH:
        raise InvalidArgument(
            field, f"is {len(value)} characters, the limit is {MAX_SERVICE_LENGTH}"
        )
    if not _SERVICE_RE.match(value):
        raise InvalidArgument(field, f"{value!r} may hold only letters, digits and ._/-")
    return value


def address(value: str, field: str = "address") -> str:
    """An IPv4/IPv6 literal or an RFC 1123 host name."""
    if not value:
        raise InvalidArgument(field, "must not be empty")
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_HOST_LABEL_RE.match(label) for label in name.split(".")):
        raise InvalidArgument(field, f"{value[:80]!r} is neither an IP address nor a host name")
    return value


def port(value: int, field: str = "port") -> int:
    if not 1 <= value <= 65535:
        raise InvalidArgument(field, f"{value} is outside 1..65535")
    return value


def load(value: float, field: str = "load") -> float:
    """A finite, non-negative figure (NaN and infinities are rejected)."""
    if math.isnan(value) or math.isinf(value):
        raise InvalidArgument(field, f"{value} is not a finite number")
    if value < 0:
        raise InvalidArgument(field, f"{value} is negative")
    if value > MAX_LOAD:
        raise InvalidArgument(field, f"{value} is above the limit {MAX_LOAD:g}")
    return value


def capacity(value: int, field: str = "capacity") -> int:
    """0 means "not given" and becomes 1."""
    if value < 0 or value > MAX_CAPACITY:
        raise InvalidArgument(field, f"{value} is outside 0..{MAX_CAPACITY}")
    return value or 1


def weight(value: float, field: str = "weight") -> float:
    """0 means "not given" and becomes 1."""
    load(value, field)
    return value or 1.0


def named_metrics(values: dict[str, float], field: str = "named_metrics") -> dict[str, float]:
    if len(values) > MAX_NAMED_METRICS:
        raise InvalidArgument(field, f"has {len(values)} entries, the limit is {MAX_NAMED_METRICS}")
    # Sorted: protobuf maps keep no order, and the first error named must not vary.
    for name, value in sorted(values.items()):
        if not name or len(name) > MAX_ID_LENGTH:
            raise InvalidArgument(field, "metric names must be 1..128 characters")
        load(value, f"{field}[{name[:40]!r}]")
    return dict(values)


def client_id(value: str, field: str = "client_id") -> str:
    """Free-form but bounded: it is logged and hashed, never trusted."""
    if len(value) > 256:
        raise InvalidArgument(field, f"is {len(value)} characters, the limit is 256")
    return value
