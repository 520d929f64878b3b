"""Envelopes whose processing failed: when to try again, when to give up.

Adobe's pipelined retries a failed message every `retryPeriodSec` until `retryValiditySec`,
then discards it (`trigger-discarded`). Here the last step is the dead-letter topic instead, with
the last error in its headers, so nothing is lost.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class RetryPolicy:
    period: float = 30.0  # seconds between attempts (retryPeriodSec)
    validity: float = 300.0  # seconds from the first failure to the dead letter (retryValiditySec)


@dataclass(frozen=True)
class Pending:
    """One envelope waiting for its next attempt."""

    line: bytes
    partition: int
    offset: int
    first_failed: float
    next_at: float
    attempts: int
    error: str


class Verdict(enum.Enum):
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


def first_failure(
    line: bytes, partition: int, offset: int, error: BaseException, now: float, policy: RetryPolicy
) -> Pending:
    return Pending(line, partition, offset, now, now + policy.period, 1, _describe(error))


def after_failure(
    pending: Pending, error: BaseException, now: float, policy: RetryPolicy
) -> tuple[Verdict, Pending]:
    """Another failed attempt: wait a period more, or dead-letter once the validity is over."""
    failed = replace(pending, attempts=pending.attempts + 1, error=_describe(error))
    if now - pending.first_failed >= policy.validity:
        return Verdict.DEAD_LETTER, failed
    return Verdict.RETRY, replace(failed, next_at=now + policy.period)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]
