"""Every client default in one place: :class:`ClientConfig`.

``lookaside.channel``, ``lookaside.sync_channel``, :class:`LookasideClient` and
the ``lookaside client`` command all read their defaults from here, so a
default is typed once. The config is plain data (frozen, validated on
construction); randomness and clocks are passed to the objects that use them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lookaside import policies
from lookaside.security import TlsConfig, Token

#: gRFC A6 service config, as a dict or its JSON text.
ServiceConfig = Mapping[str, Any] | str


def new_client_id() -> str:
    return f"client-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class ClientConfig:
    """How a client finds, calls and reports on backends."""

    #: Names this client to the LB (picks, stats). Empty: a random ``client-xxxxxxxx``.
    client_id: str = ""
    #: The LB's client token, sent on GetBackend, WatchBackends and ReportClientStats.
    token: Token | None = None
    #: TLS for every channel, to the LB and to the backends (same trust).
    tls: TlsConfig | None = None
    #: Pick locally from a WatchBackends subscription; False: GetBackend before every call.
    fast_path: bool = True
    #: Use this policy for local picks instead of the LB's policy for the service.
    fast_path_policy: str | None = None
    #: Ask for WatchBackends deltas (an LB that ignores this keeps sending full sets).
    accept_deltas: bool = True
    #: Longest wait for one GetBackend answer, seconds.
    lb_timeout: float = 2.0
    #: After finding the LB unreachable, go this long on remembered backends before asking again.
    lb_retry_interval: float = 0.5
    #: Backends remembered (GetBackend mode) for when the LB is unreachable.
    max_remembered: int = 64
    #: gRFC A6 service config: ``methodConfig`` entries with ``retryPolicy`` per method.
    service_config: ServiceConfig | None = None
    #: Retries of a call that failed before a backend saw it (on other backends, within
    #: the deadline); they do not count against a retry policy's ``maxAttempts``.
    max_transparent_retries: int = 4
    #: Request bytes a client- or bidi-streaming call keeps so that a retry can send them
    #: again; a call whose requests outgrow it is no longer retried.
    retry_buffer_bytes: int = 64 * 1024
    #: Send per-backend outcomes and latencies to the LB (ReportClientStats).
    report_stats: bool = True
    #: How often to send them until the LB asks for another interval, seconds.
    stats_interval: float = 2.0
    #: How long calls still running on a departed backend's channel may finish, seconds.
    departed_grace: float = 30.0
    #: LookasideClient only: the deadline of a whole ``compute`` call, seconds.
    timeout: float = 10.0
    #: LookasideClient only: attempts per ``compute`` call (1 = no retry policy).
    max_attempts: int = 3
    #: LookasideClient only: the longest one attempt may take; None = what is left of
    #: the deadline. Set it to fail over from a backend that hangs.
    attempt_timeout: float | None = None
    #: Extra channel arguments for the channels to backends.
    channel_options: tuple[tuple[str, int | str], ...] = field(default=())

    def __post_init__(self) -> None:
        positive = ("lb_timeout", "lb_retry_interval", "stats_interval", "timeout")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise ValueError("attempt_timeout must be positive")
        if self.retry_buffer_bytes < 0:
            raise ValueError("retry_buffer_bytes must be >= 0")
        if self.max_transparent_retries < 0 or self.max_remembered < 1:
            raise ValueError("max_transparent_retries must be >= 0 and max_remembered >= 1")
        if self.departed_grace < 0:
            raise ValueError("departed_grace must be >= 0")
        if self.fast_path_policy is not None:
            policies.create(self.fast_path_policy)  # fail fast on a typo

    def resolved_client_id(self) -> str:
        return self.client_id or new_client_id()


#: LookasideClient's defaults: GetBackend per request, as it always did.
LOOKASIDE_CLIENT_DEFAULTS = ClientConfig(fast_path=False)
