"""``pick_first``: every pick goes to the first live backend in registration order.

The seed's simplest policy. When that backend dies (lease expiry, broken load
stream, deregistration) the next one in registration order takes over.
"""

from __future__ import annotations

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Picker, Policy, Snapshot, first_allowed


class PickFirstPicker(Picker):
    __slots__ = ("_endpoints",)

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self._endpoints = endpoints

    def pick(self, request: PickRequest) -> Endpoint | None:
        if not request.exclude_ids:
            return self._endpoints[0] if self._endpoints else None
        found = first_allowed(self._endpoints, 0, request.exclude_ids)
        return found[1] if found else None


class PickFirst(Policy):
    name = "pick_first"

    def build(self, snapshot: Snapshot) -> Picker:
        return PickFirstPicker(snapshot.endpoints)
