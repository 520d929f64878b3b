"""Where a transiently failed email request goes next: a delay topic, or the dead-letter topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryTopic:
    """One delay topic and how long a request waits in it."""

    name: str
    delay: timedelta


@dataclass(frozen=True)
class Retry:
    """Send the request to `topic`, not to be tried again before `not_before`."""

    topic: str
    not_before: datetime
    attempt: int


@dataclass(frozen=True)
class Exhausted:
    """Every delay topic has been used: dead-letter the request."""

    attempts: int


@dataclass(frozen=True)
class Expired:
    """The next attempt would fall after the request's validity: record it as expired."""

    expires_at: datetime


def next_retry_topic(
    attempt: int,
    retries: Sequence[RetryTopic],
    now: datetime,
    expires_at: datetime | None,
) -> Retry | Exhausted | Expired:
    """Route a request after its attempt number `attempt` (1 for the first send) failed.

    Attempt n goes to the n-th delay topic, so delays grow with each failure; after the last
    topic the request is exhausted. A retry that could only happen at or after `expires_at` is
    pointless, so it is reported as expired instead of being queued.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if attempt > len(retries):
        return Exhausted(attempts=attempt)
    topic = retries[attempt - 1]
    not_before = now + topic.delay
    if expires_at is not None and not_before >= expires_at:
        return Expired(expires_at=expires_at)
    return Retry(topic=topic.name, not_before=not_before, attempt=attempt)


def defer_topic(retries: Sequence[RetryTopic]) -> RetryTopic:
    """The delay topic used to wait without spending an attempt (a claim held elsewhere)."""
    if not retries:
        raise ValueError("at least one retry topic is required")
    return retries[0]
