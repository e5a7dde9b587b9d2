"""``round_robin``: cycle fairly over the live backends.

Unlike grpc-go's picker, which starts each rebuilt picker at a random index,
ours resumes right after the backend it picked last. The LB rebuilds pickers on
every join and leave, so resuming keeps the cycle fair across membership changes:
nobody is skipped or picked twice because somebody else joined.
"""

from __future__ import annotations

from lookaside.model import Endpoint, PickRequest
from lookaside.policies.base import Picker, Policy, Snapshot, first_allowed


class RoundRobinPicker(Picker):
    __slots__ = ("_endpoints", "_next", "_policy")

    def __init__(self, endpoints: tuple[Endpoint, ...], start: int, policy: RoundRobin) -> None:
        self._endpoints = endpoints
        self._next = start
        self._policy = policy

    def pick(self, request: PickRequest) -> Endpoint | None:
        if not self._endpoints:
            return None
        found = first_allowed(self._endpoints, self._next, request.exclude_ids)
        if found is None:
            return None
        index, endpoint = found
        self._next = (index + 1) % len(self._endpoints)
        self._policy.last_picked = endpoint.id
        return endpoint


class RoundRobin(Policy):
    name = "round_robin"

    last_picked: str | None = None
    _previous_order: tuple[str, ...] = ()

    def build(self, snapshot: Snapshot) -> Picker:
        endpoints = snapshot.endpoints
        start = self._resume_index(endpoints)
        self._previous_order = tuple(e.id for e in endpoints)
        return RoundRobinPicker(endpoints, start, self)

    def _resume_index(self, endpoints: tuple[Endpoint, ...]) -> int:
        """Where the cycle goes on: right after the last pick, in the previous order.

        If the backend picked last has left, the cycle goes on with its first
        successor (in the previous order) that is still here, so nobody is
        served twice in one cycle.
        """
        if not endpoints:
            return 0
        if self.last_picked is None:
            return self.rng.randrange(len(endpoints))
        position = {e.id: i for i, e in enumerate(endpoints)}
        if self.last_picked in position:
            return (position[self.last_picked] + 1) % len(endpoints)
        previous = self._previous_order
        if self.last_picked in previous:
            at = previous.index(self.last_picked)
            for backend_id in previous[at + 1 :] + previous[:at]:
                if backend_id in position:
                    return position[backend_id]
        return 0
