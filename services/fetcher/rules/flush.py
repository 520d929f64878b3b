"""When the fetcher commits a transaction (messages and pointer together)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class FlushLimits:
    """Adobe's `pointerFlushMessageCount` and `pointerFlushPeriodSec`, plus an idle linger."""

    message_count: int = 1000
    period: timedelta = timedelta(seconds=5)
    linger: timedelta = timedelta(milliseconds=50)


def flush_due(pending: int, since_first: timedelta, idle: timedelta, limits: FlushLimits) -> bool:
    """Commit now?

    Adobe flushes its pointer every N messages or every period. Here the pointer rides in the
    same transaction as the messages, so the flush is also when readers first see them: a
    stream that has gone quiet for `linger` commits at once rather than waiting for the period,
    which keeps latency low at low rates and batches large at high rates.
    """
    if pending <= 0:
        return False
    return pending >= limits.message_count or since_first >= limits.period or idle >= limits.linger
