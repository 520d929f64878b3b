"""Campaign policies: time sanity, validity, consent and suppression, frequency cap, quiet hours.

Each takes plain values (times are tz-aware datetimes) and answers one question; the agent
passes the trigger's own time or the wall clock as each docstring says.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.suppression import applies_to

Category = Literal["marketing", "transactional"]

NO_CONSENT = "no_consent"
FREQUENCY_CAPPED = "frequency_capped"
FUTURE_TIMESTAMP = "future_timestamp"  # outcome invalid:future_timestamp
MISSING_DATA = "missing_data"  # outcome skipped:missing_data


def is_expired(trigger_at: datetime, now: datetime, validity: timedelta) -> bool:
    """Whether a trigger is too old to mail: its age is measured from its own (Analytics) time.

    The window is half-open, so a trigger exactly `validity` old is expired. Using the trigger
    time rather than the Kafka time is what stops a replay or a backlog from mailing late.
    """
    return now - trigger_at >= validity


def is_future_dated(trigger_at: datetime, now: datetime, skew: timedelta) -> bool:
    """Whether a trigger's own time is too far ahead of the wall clock to be believed.

    Validity, dedup windows and caps are measured from the trigger's time, so a trigger dated
    in the future (up to year 9999 passes the envelope's schema) would never expire, and once
    remembered would push the profile's history out of its windows. Up to `skew` ahead is
    clock drift between Adobe and us and is accepted; beyond it (strictly), the trigger is
    invalid and must not reach any state.
    """
    return trigger_at - now > skew


def suppression_reason(
    category: Category, email_consent: bool, suppressed_as: str | None
) -> str | None:
    """Why the profile must not be mailed for this campaign, or None.

    A suppression stops the campaigns its reason covers (`applies_to`, the mailer's own rule):
    an unsubscribe stops marketing mail, a bounce, a complaint or a manual entry stops all.
    `email_consent` is the marketing opt-in, so a transactional campaign (a receipt) does not
    need it.
    """
    if suppressed_as and applies_to(suppressed_as, category):
        return suppressed_as
    if category == "marketing" and not email_consent:
        return NO_CONSENT
    return None


def within_frequency_cap(
    sends: Iterable[datetime], at: datetime, count: int, window: timedelta
) -> bool:
    """Whether one more request at `at` stays within `count` per rolling `window`.

    `sends` are the trigger times of the profile's earlier requests that count towards the cap;
    those in `(at - window, ...)` are counted, later ones included, so out-of-order triggers
    cannot squeeze in an extra request. Times are trigger times, so a replay decides alike.
    """
    recent = sum(1 for sent in sends if sent > at - window)
    return recent < count


def quiet_zone(profile_timezone: str | None, campaign_timezone: str) -> ZoneInfo:
    """The profile's time zone if it is a known IANA name, else the campaign's, else UTC."""
    for name in (profile_timezone, campaign_timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_hours_end(now: datetime, start: time, end: time, zone: ZoneInfo) -> datetime | None:
    """The end of the quiet window `now` falls in (UTC), or None when sending now is fine.

    Local wall-clock times in `zone`; the window is `[start, end)` and may span midnight
    (22:00-06:00). `start == end` is an empty window. `now` is the wall clock: quiet hours are
    about when the mail lands, not when the shopper acted.
    """
    if start == end:
        return None
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    day = local.date()
    if start < end:
        if not start <= clock < end:
            return None
    elif clock >= start:
        day += timedelta(days=1)
    elif clock >= end:
        return None
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def sends_counted_by_caps(
    sends: Mapping[str, Iterable[datetime]], transactional: Container[str]
) -> list[datetime]:
    """The earlier requests a cap counts: every campaign's, except transactional campaigns'.

    A cap protects the shopper's inbox, so it spans campaigns (Braze and Iterable cap per
    channel, not per campaign); receipts neither count nor are capped.
    """
    return [
        at for campaign, times in sends.items() if campaign not in transactional for at in times
    ]
