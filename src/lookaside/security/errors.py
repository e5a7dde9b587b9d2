"""The one error the security building blocks raise for bad configuration.

Token and TLS files are read once at start-up; a missing, unreadable or empty
file must stop the process with a message naming the flag's file, not surface
later as a confusing handshake or ``UNAUTHENTICATED`` failure. The message never
contains secret material.
"""

from __future__ import annotations

__all__ = ["SecurityConfigError"]


class SecurityConfigError(ValueError):
    """A token or TLS setting cannot be used; the message says which file and why."""
