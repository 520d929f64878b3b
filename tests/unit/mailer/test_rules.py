"""Retry routing, validity and suppression decisions, with plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.suppression import suppression_key
from services.mailer.rules.retry import (
    Exhausted,
    Expired,
    Retry,
    RetryTopic,
    defer_topic,
    next_retry_topic,
)
from services.mailer.rules.suppression import (
    HARD_BOUNCE,
    bounce_suppression,
    enhanced_status,
)
from services.mailer.rules.validity import expiry, is_due, is_expired

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
RETRIES = (
    RetryTopic("emails.retry.30s", timedelta(seconds=30)),
    RetryTopic("emails.retry.5m", timedelta(minutes=5)),
    RetryTopic("emails.retry.30m", timedelta(minutes=30)),
)


def test_each_failure_goes_to_a_longer_delay_topic() -> None:
    first = next_retry_topic(1, RETRIES, NOW, None)
    second = next_retry_topic(2, RETRIES, NOW, None)
    third = next_retry_topic(3, RETRIES, NOW, None)
    assert first == Retry("emails.retry.30s", NOW + timedelta(seconds=30), 1)
    assert second == Retry("emails.retry.5m", NOW + timedelta(minutes=5), 2)
    assert third == Retry("emails.retry.30m", NOW + timedelta(minutes=30), 3)


def test_after_the_last_delay_topic_the_request_is_exhausted() -> None:
    assert next_retry_topic(4, RETRIES, NOW, None) == Exhausted(attempts=4)


def test_a_retry_past_the_validity_is_expired_not_queued() -> None:
    ends = NOW + timedelta(minutes=4)
    assert next_retry_topic(1, RETRIES, NOW, ends) == Retry(
        "emails.retry.30s", NOW + timedelta(seconds=30), 1
    )
    assert next_retry_topic(2, RETRIES, NOW, ends) == Expired(expires_at=ends)
    # a retry landing exactly on the deadline is already too late
    assert next_retry_topic(1, RETRIES, NOW, NOW + timedelta(seconds=30)) == Expired(
        NOW + timedelta(seconds=30)
    )


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        next_retry_topic(0, RETRIES, NOW, None)


def test_defer_uses_the_shortest_delay() -> None:
    assert defer_topic(RETRIES) == RETRIES[0]
    with pytest.raises(ValueError):
        defer_topic(())


def test_expiry_prefers_the_request_deadline_over_the_campaign_validity() -> None:
    trigger_at = NOW - timedelta(hours=1)
    assert expiry(None, trigger_at, timedelta(days=1)) == trigger_at + timedelta(days=1)
    own = NOW + timedelta(minutes=5)
    assert expiry(own, trigger_at, timedelta(days=1)) == own


def test_expired_from_the_deadline_itself() -> None:
    assert not is_expired(NOW + timedelta(milliseconds=1), NOW)
    assert is_expired(NOW, NOW)
    assert is_expired(NOW - timedelta(days=1), NOW)


def test_due_when_not_before_has_passed_or_is_absent() -> None:
    assert is_due(None, NOW)
    assert is_due(NOW, NOW)
    assert not is_due(NOW + timedelta(seconds=1), NOW)


@pytest.mark.parametrize(
    ("code", "text", "stage", "expected"),
    [
        (550, "5.1.1 No such user", "rcpt", HARD_BOUNCE),
        (550, "5.1.10 Null MX", "data", HARD_BOUNCE),
        (550, "No such user", "rcpt", HARD_BOUNCE),
        (553, "mailbox name not allowed", "rcpt", HARD_BOUNCE),
        (554, "5.7.1 Message rejected as spam", "data", None),
        (550, "5.7.1 Relaying denied", "rcpt", None),
        (554, "Transaction failed", "data", None),
        (451, "4.1.1 Try later", "rcpt", None),
    ],
)
def test_only_recipient_level_rejections_suppress(
    code: int, text: str, stage: str, expected: str | None
) -> None:
    assert bounce_suppression(code, enhanced_status(text), stage) == expected  # type: ignore[arg-type]


def test_enhanced_status_is_read_from_the_reply_start() -> None:
    assert enhanced_status("5.1.1 <x@y.z>: no such user") == "5.1.1"
    assert enhanced_status("4.7.0 slow down") == "4.7.0"
    assert enhanced_status("no code 5.1.1 here") is None


def test_addresses_are_suppressed_case_insensitively() -> None:
    assert suppression_key("  Ann.Smith@Example.COM ") == "ann.smith@example.com"
