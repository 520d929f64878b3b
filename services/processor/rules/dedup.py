"""Deduplication: the same upstream message, and the same campaign for a profile in a window."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from services.processor.rules.state import ProfileState, from_millis


class Dedup(enum.Enum):
    SEND = "send"
    REPEAT_MESSAGE = "repeat_message"  # the same messageId again (redelivery, upstream repeat)
    WITHIN_WINDOW = "dedup_window"  # the campaign already fired for this profile recently


def dedup_decision(
    state: ProfileState, message_id: str, campaign: str, at: datetime, window: timedelta
) -> Dedup:
    """Whether a trigger may become an email request as far as repetition goes.

    `at` is the trigger's own time, so a replay decides as the original run did. The window is
    half-open: a trigger exactly `window` after the last request sends again. A trigger older
    than the last request (out of order, as after a rebalance) counts by its distance too, so a
    zero window never holds anything back.
    """
    if message_id in state.seen:
        return Dedup.REPEAT_MESSAGE
    last = state.sent.get(campaign)
    if last is not None and abs(at - from_millis(last)) < window:
        return Dedup.WITHIN_WINDOW
    return Dedup.SEND
