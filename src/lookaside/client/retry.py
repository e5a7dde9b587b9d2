"""When a failed call is tried again: transparent retries and gRFC A6 retry policies.

Two kinds of retry, as gRFC A6 ("gRPC Retry Design") defines them:

* *Transparent*: the call failed with ``UNAVAILABLE`` before any backend's
  application saw it (connection refused, no route, the backend gone). It is
  always safe to send again, so it is retried on another backend, within the
  call's deadline, whatever the service config says, and it does not count
  against ``maxAttempts``. :func:`is_transparent` tells such failures apart by
  the status details gRPC C-core writes for them; ``Stream removed`` (the
  connection broke while the call was running) is *not* one of them, since the
  backend may have acted on the call.
* *Configured*: a ``retryPolicy`` per method in the service-config format of
  A6 (``methodConfig`` entries naming ``service`` and optionally ``method``).
  A call that ends with one of ``retryableStatusCodes`` is sent again (to
  another backend) after a back-off of ``random(0, min(initialBackoff *
  backoffMultiplier**(n-1), maxBackoff))``, up to ``maxAttempts`` attempts in
  all (at most :data:`MAX_ATTEMPTS_LIMIT`, as A6 caps it), never past the
  deadline. A call is *committed*, and no longer retried, once a response
  message reached the caller.

Beyond A6, a policy may carry ``perAttemptRecvTimeout`` (the name gRFC A44
gives it for xDS): the longest one attempt may wait before it is given up and,
if ``DEADLINE_EXCEEDED`` is retryable, tried elsewhere.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

MAX_ATTEMPTS_LIMIT = 5  # gRFC A6: larger maxAttempts values are treated as 5

#: Substrings of C-core's UNAVAILABLE details when the call never reached a server.
_NOT_SENT_MARKERS = (
    "failed to connect",
    "Connection refused",
    "connections to all backends failing",
    "DNS resolution failed",
    "REFUSED_STREAM",
    "No route to host",
    "empty address list",
)

_CODES = {code.name: code for code in grpc.StatusCode}


def is_transparent(code: grpc.StatusCode, details: str | None) -> bool:
    """True for ``UNAVAILABLE`` failures where no backend application saw the call."""
    if code is not grpc.StatusCode.UNAVAILABLE or not details:
        return False
    return any(marker in details for marker in _NOT_SENT_MARKERS)


def _seconds(text: Any, what: str) -> float:
    """A proto3 JSON Duration (``"0.1s"``, ``".5s"``) as seconds."""
    if not isinstance(text, str) or not text.endswith("s"):
        raise ValueError(f"{what}: {text!r} is not a duration such as '0.1s'")
    try:
        value = float(text[:-1])
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a duration such as '0.1s'") from None
    if value <= 0:
        raise ValueError(f"{what}: must be greater than zero")
    return value


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One method's ``retryPolicy`` (gRFC A6), validated."""

    max_attempts: int
    initial_backoff: float
    max_backoff: float
    backoff_multiplier: float
    retryable_codes: frozenset[grpc.StatusCode]
    per_attempt_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 2:
            raise ValueError("retryPolicy.maxAttempts must be two or greater")
        if min(self.initial_backoff, self.max_backoff, self.backoff_multiplier) <= 0:
            raise ValueError("retryPolicy back-off figures must be greater than zero")
        if not self.retryable_codes:
            raise ValueError("retryPolicy.retryableStatusCodes must not be empty")
        if self.per_attempt_timeout is not None and self.per_attempt_timeout <= 0:
            raise ValueError("retryPolicy.perAttemptRecvTimeout must be greater than zero")

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RetryPolicy:
        try:
            attempts = int(raw["maxAttempts"])
            codes = raw["retryableStatusCodes"]
            initial = _seconds(raw["initialBackoff"], "retryPolicy.initialBackoff")
            ceiling = _seconds(raw["maxBackoff"], "retryPolicy.maxBackoff")
            multiplier = float(raw["backoffMultiplier"])
        except KeyError as missing:
            raise ValueError(f"retryPolicy needs {missing.args[0]}") from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"retryPolicy: {error}") from None
        per_attempt = raw.get("perAttemptRecvTimeout")
        return cls(
            max_attempts=min(attempts, MAX_ATTEMPTS_LIMIT),
            initial_backoff=initial,
            max_backoff=ceiling,
            backoff_multiplier=multiplier,
            retryable_codes=frozenset(_status_code(c) for c in _list(codes)),
            per_attempt_timeout=(
                None
                if per_attempt is None
                else _seconds(per_attempt, "retryPolicy.perAttemptRecvTimeout")
            ),
        )

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first retry)."""
        ceiling = min(
            self.initial_backoff * self.backoff_multiplier ** (retry - 1), self.max_backoff
        )
        return rng.uniform(0, ceiling)


def _list(value: Any) -> Iterable[Any]:
    if not isinstance(value, list):
        raise ValueError("retryPolicy.retryableStatusCodes must be a list")
    return value


def _status_code(name: Any) -> grpc.StatusCode:
    code = _CODES.get(str(name).upper()) if isinstance(name, str) else None
    if code is None or code is grpc.StatusCode.OK:
        raise ValueError(f"retryPolicy.retryableStatusCodes: {name!r} is not a gRPC status code")
    return code


class RetryPolicies:
    """The retry policy of each method, from a gRFC A6 service config.

    Lookup follows the service-config rules: an entry naming the service and
    the method wins over one naming only the service, which wins over an
    empty name (every method).
    """

    def __init__(self, service_config: Mapping[str, Any] | str | None = None) -> None:
        self._by_method: dict[str, RetryPolicy] = {}
        self._by_service: dict[str, RetryPolicy] = {}
        self._default: RetryPolicy | None = None
        if service_config is None:
            return
        config = json.loads(service_config) if isinstance(service_config, str) else service_config
        if not isinstance(config, Mapping):
            raise ValueError("service config must be a JSON object")
        for entry in config.get("methodConfig", ()):
            raw = entry.get("retryPolicy")
            if raw is None:
                continue
            policy = RetryPolicy.from_json(raw)
            for name in entry.get("name", ()):
                self._add(name, policy)

    def _add(self, name: Mapping[str, str], policy: RetryPolicy) -> None:
        service, method = name.get("service", ""), name.get("method", "")
        if method and not service:
            raise ValueError("methodConfig name: a method needs its service")
        if method:
            self._by_method[f"/{service}/{method}"] = policy
        elif service:
            self._by_service[service] = policy
        else:
            self._default = policy

    def for_method(self, path: str) -> RetryPolicy | None:
        """The policy for ``/package.Service/Method``, or None (no configured retries)."""
        policy = self._by_method.get(path)
        if policy is not None:
            return policy
        service = path[1:].partition("/")[0]
        return self._by_service.get(service, self._default)
