"""Security building blocks: bearer tokens, the auth interceptor, TLS credentials.

Each module has one job and no knowledge of the LB or backend: :mod:`.tokens`
loads and compares secrets, :mod:`.auth` enforces them on gRPC calls, and
:mod:`.tls` turns PEM files into gRPC credentials. The servers wire them in.
"""

from __future__ import annotations

from lookaside.security.auth import (
    BACKEND_METHODS,
    CLIENT_METHODS,
    BearerAuthInterceptor,
    bearer_call_credentials,
    bearer_metadata,
    check_bearer,
    lb_auth_rules,
    with_bearer_token,
)
from lookaside.security.errors import SecurityConfigError
from lookaside.security.tls import TlsConfig, add_tls_flags, channel_credentials, server_credentials
from lookaside.security.tokens import (
    AUTH_TOKEN_ENV,
    CLIENT_TOKEN_ENV,
    AuthTokens,
    Token,
    add_token_flags,
    load_token_file,
    resolve_token,
    token_from_env,
)

__all__ = [
    "AUTH_TOKEN_ENV",
    "BACKEND_METHODS",
    "CLIENT_METHODS",
    "CLIENT_TOKEN_ENV",
    "AuthTokens",
    "BearerAuthInterceptor",
    "SecurityConfigError",
    "TlsConfig",
    "Token",
    "add_tls_flags",
    "add_token_flags",
    "bearer_call_credentials",
    "bearer_metadata",
    "channel_credentials",
    "check_bearer",
    "lb_auth_rules",
    "load_token_file",
    "resolve_token",
    "server_credentials",
    "token_from_env",
    "with_bearer_token",
]
