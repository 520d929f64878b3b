"""When the fetcher commits a transaction (messages and pointer together)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class FlushLimits:
    """Adobe's `pointerFlushMessageCount` and `pointerFlushPeriodSec`, plus an idle linger and
    the commit interval while data flows."""

    message_count: int = 1000
    period: timedelta = timedelta(seconds=5)
    linger: timedelta = timedelta(milliseconds=50)
    # Kafka Streams commits exactly-once work every 100 ms by default; zero leaves only the
    # period, as pipelined flushes.
    commit_interval: timedelta = timedelta(milliseconds=100)

    @property
    def longest_open(self) -> timedelta:
        """How long a transaction with records in it may stay open."""
        if self.commit_interval <= timedelta(0):
            return self.period
        return min(self.period, self.commit_interval)


def flush_due(pending: int, since_first: timedelta, idle: timedelta, limits: FlushLimits) -> bool:
    """Commit now?

    Adobe flushes its pointer every N messages or every period. Here the pointer rides in the
    same transaction as the messages, so the flush is also when readers first see them, and a
    record waits for it: a steady stream is never quiet for `linger`, so without a bound it
    would wait for `message_count` records or the whole period (seconds at 1M/h). So a
    transaction commits once it has been open `commit_interval`, whatever Adobe's settings
    say, or as soon as the stream goes quiet, or at `message_count` records.
    """
    if pending <= 0:
        return False
    return (
        pending >= limits.message_count
        or since_first >= limits.longest_open
        or idle >= limits.linger
    )
