"""Whether an email request is still worth sending, judged on the trigger's own event time."""

from __future__ import annotations

from datetime import datetime, timedelta


def expiry(
    expires_at: datetime | None, trigger_timestamp: datetime, validity: timedelta
) -> datetime:
    """The request's deadline: its own `expiresAt` if the processor set one, else the trigger's
    timestamp plus the campaign's validity (Analytics event time, not the Kafka timestamp)."""
    return expires_at if expires_at is not None else trigger_timestamp + validity


def is_expired(deadline: datetime, now: datetime) -> bool:
    """Expired once `now` reaches the deadline: the deadline itself is already too late."""
    return now >= deadline


def is_due(not_before: datetime | None, now: datetime) -> bool:
    """A request with no `notBefore`, or one whose `notBefore` has passed, may be sent now."""
    return not_before is None or now >= not_before
