"""Campaign policies: time sanity, validity, consent and suppression, cap, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.processor.rules.policies import (
    FREQUENCY_CAPPED,
    NO_CONSENT,
    is_expired,
    is_future_dated,
    quiet_hours_end,
    quiet_zone,
    sends_counted_by_caps,
    suppression_reason,
    within_frequency_cap,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_validity_is_measured_from_the_trigger_time_and_half_open() -> None:
    assert not is_expired(T0, T0 + HOUR - timedelta(milliseconds=1), HOUR)
    assert is_expired(T0, T0 + HOUR, HOUR)
    assert is_expired(T0 - timedelta(days=3), T0, timedelta(days=2))  # a replayed backlog
    assert not is_expired(T0 + HOUR, T0, HOUR)  # a trigger from a clock ahead of ours


SKEW = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("ahead", "future_dated"),
    [
        (-timedelta(days=3), False),  # an old trigger is the validity rule's business
        (timedelta(0), False),
        (timedelta(minutes=4, seconds=59), False),  # clock drift between Adobe and us
        (SKEW, False),  # the skew itself is still accepted
        (SKEW + timedelta(milliseconds=1), True),
        (timedelta(days=1), True),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - T0, True),  # the schema's maximum
    ],
)
def test_a_trigger_dated_beyond_the_skew_is_future_dated(
    ahead: timedelta, future_dated: bool
) -> None:
    assert is_future_dated(T0 + ahead, T0, SKEW) is future_dated


def test_suppression_list_beats_everything_and_consent_gates_marketing_only() -> None:
    assert suppression_reason("marketing", True, None) is None
    assert suppression_reason("marketing", False, None) == NO_CONSENT
    assert suppression_reason("transactional", False, None) is None
    # an unsubscribe stops marketing only; a bounce or a complaint stops every campaign
    assert suppression_reason("marketing", True, "unsubscribed") == "unsubscribed"
    assert suppression_reason("transactional", True, "unsubscribed") is None
    assert suppression_reason("transactional", False, "hard_bounce") == "hard_bounce"
    assert suppression_reason("transactional", True, "complaint") == "complaint"
    assert suppression_reason("marketing", True, "unsubscribed") == "unsubscribed"
    assert suppression_reason("transactional", True, "hard_bounce") == "hard_bounce"
    assert FREQUENCY_CAPPED == "frequency_capped"


def test_frequency_cap_is_a_rolling_window() -> None:
    sends = [T0 - 3 * HOUR, T0 - 2 * HOUR]
    assert not within_frequency_cap(sends, T0, 2, 4 * HOUR)
    assert within_frequency_cap(sends, T0, 3, 4 * HOUR)
    # the oldest send leaves the window exactly `window` later (open at its old end)
    assert within_frequency_cap(sends, T0, 2, 3 * HOUR)
    assert within_frequency_cap([], T0, 1, HOUR)


def test_frequency_cap_counts_later_sends_of_out_of_order_triggers() -> None:
    assert not within_frequency_cap([T0 + HOUR], T0, 1, 4 * HOUR)


def test_caps_count_every_campaign_but_transactional_ones() -> None:
    sends = {"cart": [T0], "browse": [T0 - HOUR], "receipt": [T0 - 2 * HOUR]}
    counted = sends_counted_by_caps(sends, {"receipt"})
    assert sorted(counted) == [T0 - HOUR, T0]


@pytest.mark.parametrize(
    ("local_now", "expected_end"),
    [
        (datetime(2026, 11, 2, 23, 30), datetime(2026, 11, 3, 6, 0)),  # after start, same night
        (datetime(2026, 11, 3, 5, 30), datetime(2026, 11, 3, 6, 0)),  # Braze's example
        (datetime(2026, 11, 3, 6, 0), None),  # the end is exclusive
        (datetime(2026, 11, 2, 21, 59), None),
        (datetime(2026, 11, 2, 22, 0), datetime(2026, 11, 3, 6, 0)),  # the start is inclusive
    ],
)
def test_quiet_hours_over_midnight_in_the_profile_zone(
    local_now: datetime, expected_end: datetime | None
) -> None:
    paris = ZoneInfo("Europe/Paris")
    now = local_now.replace(tzinfo=paris).astimezone(UTC)
    end = quiet_hours_end(now, time(22, 0), time(6, 0), paris)
    expected = None if expected_end is None else expected_end.replace(tzinfo=paris)
    assert end == expected
    assert end is None or end.tzinfo is UTC


def test_quiet_hours_within_one_day_and_empty_window() -> None:
    utc = ZoneInfo("UTC")
    assert quiet_hours_end(T0, time(11, 0), time(13, 0), utc) == T0 + HOUR
    assert quiet_hours_end(T0, time(13, 0), time(14, 0), utc) is None
    assert quiet_hours_end(T0, time(12, 0), time(12, 0), utc) is None


def test_quiet_zone_falls_back_to_the_campaign_then_utc() -> None:
    assert quiet_zone("Asia/Tokyo", "Europe/Paris") == ZoneInfo("Asia/Tokyo")
    assert quiet_zone(None, "Europe/Paris") == ZoneInfo("Europe/Paris")
    assert quiet_zone("Mars/Olympus", "Europe/Paris") == ZoneInfo("Europe/Paris")
    assert quiet_zone("", "nowhere") == ZoneInfo("UTC")
