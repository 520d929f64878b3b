"""The error kinds every adapter raises and every loop acts on.

    TriggerlineError
     +-- InvalidInput       dead-letter at once, never retry
     +-- TransientFailure   back off or use a delay topic; may carry retry_after
     +-- PermanentFailure   record the outcome; an SMTP 5xx also suppresses the address
     +-- ConfigurationError refuse to start, naming the setting

Messages say what happened and what to do next; they never carry a token, key or password.
"""

from __future__ import annotations

from datetime import timedelta


class TriggerlineError(Exception):
    """Root of every error Triggerline raises on purpose."""


class InvalidInput(TriggerlineError):
    """The message can never succeed as it is: dead-letter it with this reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class TransientFailure(TriggerlineError):
    """A dependency failed for now; the same work may succeed later."""

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentFailure(TriggerlineError):
    """A dependency refused the work for good; record the outcome and move on."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConfigurationError(TriggerlineError):
    """Start-up cannot continue; the message names the setting and the fix."""
