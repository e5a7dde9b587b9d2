"""What the etcd store writes: membership records and load batches, as compact JSON.

Fields are read off the dataclasses (:class:`~lookaside.model.Endpoint`,
:class:`~lookaside.model.LoadMetrics`), so a field added to the model is stored
without touching this module; a field a newer replica wrote and this one does
not know is skipped, so replicas of two versions can share one etcd.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lookaside.model import Endpoint, LoadMetrics, ServingState

#: Endpoint fields a membership record leaves out: this replica's clock, and what reports
#: change (which travels in load batches instead).
_NOT_STORED = frozenset({"registered_at", "reported_at", "metrics", "serving_state"})


@dataclass(frozen=True, slots=True)
class BackendRecord:
    """One membership record: the backend, the replica that keeps its lease, its owner."""

    endpoint: Endpoint
    holder: str  # replica id; its etcd lease carries this record
    caller: str = ""  # the IP that registered it ("" from replicas that predate leases)
    verifier: str = ""  # of its lease id (lookaside.lb.ownership.verifier), never the id


@dataclass(frozen=True, slots=True)
class LoadEntry:
    """One backend's latest load as a replica heard it, ``age`` seconds before the write."""

    backend_id: str
    load: float
    age: float
    metrics: LoadMetrics
    state: ServingState = ServingState.SERVING


@functools.cache
def _specs(cls: type[Any]) -> tuple[tuple[str, Any, type[enum.Enum] | None], ...]:
    """(name, default, enum type or None) of each field: read once per class, not per value
    (``dataclasses.fields`` and type hints cost more than the rest of a decode)."""
    hints = typing.get_type_hints(cls)
    specs = []
    for spec in dataclasses.fields(cls):
        kind = hints.get(spec.name)
        is_enum = isinstance(kind, type) and issubclass(kind, enum.Enum)
        specs.append((spec.name, spec.default, kind if is_enum else None))
    return tuple(specs)


#: The metrics of a report that carried none (most): one shared, immutable value.
_NO_METRICS = LoadMetrics()


def _plain(value: object) -> object:
    return value.value if isinstance(value, enum.Enum) else value


def _fields_to_dict(obj: object, skip: frozenset[str] = frozenset()) -> dict[str, object]:
    """The dataclass's fields that differ from their defaults (enums by value)."""
    out: dict[str, object] = {}
    for name, default, _ in _specs(type(obj)):  # type: ignore[arg-type]  # classes are hashable
        if name in skip:
            continue
        value = getattr(obj, name)
        if default is not dataclasses.MISSING and value == default:
            continue
        if isinstance(value, Mapping):
            if not value:
                continue
            value = dict(value)
        out[name] = _plain(value)
    return out


def _from_dict(cls: type[Any], data: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for name, _, kind in _specs(cls):  # type: ignore[arg-type]  # classes are hashable
        if name in data:
            kwargs[name] = data[name] if kind is None else kind(data[name])
    return cls(**kwargs)


def encode_backend(record: BackendRecord) -> bytes:
    body: dict[str, object] = {
        "endpoint": _fields_to_dict(record.endpoint, _NOT_STORED),
        "holder": record.holder,
    }
    if record.verifier:
        body["caller"], body["lease"] = record.caller, record.verifier
    return json.dumps(body, separators=(",", ":")).encode()


def decode_backend(value: bytes) -> BackendRecord:
    """A stored record; ``ValueError`` when it is not one (never trusted blindly)."""
    try:
        body = json.loads(value)
        endpoint = _from_dict(Endpoint, body["endpoint"])
        holder = str(body["holder"])
        caller, verifier = str(body.get("caller", "")), str(body.get("lease", ""))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a backend record: {error}") from None
    return BackendRecord(endpoint, holder, caller, verifier)


def encode_loads(entries: Iterable[LoadEntry]) -> bytes:
    body = {
        e.backend_id: [round(e.load, 6), round(e.age, 3), _fields_to_dict(e.metrics)]
        + ([_plain(e.state)] if e.state is not ServingState.SERVING else [])
        for e in entries
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_loads(value: bytes) -> list[LoadEntry]:
    try:
        body = json.loads(value)
        return [_load_entry(str(backend_id), *fields) for backend_id, fields in body.items()]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a load batch: {error}") from None


def _load_entry(
    backend_id: str, load: float, age: float, metrics: Mapping[str, Any], state: Any = None
) -> LoadEntry:
    serving = ServingState.SERVING if state is None else ServingState(state)
    figures = _from_dict(LoadMetrics, metrics) if metrics else _NO_METRICS
    return LoadEntry(backend_id, float(load), float(age), figures, serving)
