"""Points in time an operator names: `2h` (that long ago) or an ISO time, never the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common.settings import parse_duration
from services.ops.errors import OperatorError


def parse_moment(text: str, now: datetime, option: str = "time") -> datetime:
    """`2h`, `30m`, `7d` (that long before `now`) or an ISO time (UTC unless it names an offset).

    A moment after `now` is refused: a replay or a report cannot start in the future.
    """
    spelled = text.strip()
    moment: datetime | None = None
    try:
        moment = now - parse_duration(spelled)
    except ValueError:
        try:
            moment = datetime.fromisoformat(spelled.replace("Z", "+00:00"))
        except ValueError:
            raise OperatorError(
                f"{option} {text!r} is neither a duration (30m, 2h, 7d) nor an ISO time "
                "(2026-11-28T10:00:00Z)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    if moment > now + timedelta(seconds=1):
        raise OperatorError(
            f"{option} {text!r} is in the future (now is {now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})"
        )
    return moment


def iso(moment: datetime) -> str:
    """`2026-11-28T10:00:00Z`: how every operator command prints a time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
