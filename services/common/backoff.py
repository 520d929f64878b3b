"""Exponential back-off with jitter: the one retry schedule every service uses."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


def backoff_delay(
    attempt: int,
    initial: timedelta,
    cap: timedelta,
    jitter: float = 1.0,
    retry_after: timedelta | None = None,
) -> timedelta:
    """Wait before retry number `attempt` (1, 2, ...).

    The step doubles from `initial` up to `cap`; `jitter` (a draw in [0, 1) from the caller's
    random source, so tests can pin it) scales it to between half and all of the step, which
    spreads many clients apart without ever retrying at once. A dependency's own `retry_after`
    (a 503's Retry-After) is a floor: retrying sooner only adds load to something failing.
    """
    step = min(cap, initial * (2 ** min(max(attempt - 1, 0), 30)))
    delay: timedelta = step * (0.5 + jitter / 2)
    if retry_after is not None and retry_after > delay:
        return retry_after
    return delay


@dataclass(frozen=True)
class Backoff:
    """A back-off policy with its own random source, for loops that just need the next wait."""

    initial: timedelta = timedelta(milliseconds=200)
    cap: timedelta = timedelta(seconds=30)

    def delay(
        self, attempt: int, retry_after: timedelta | None = None, rng: random.Random | None = None
    ) -> timedelta:
        return backoff_delay(attempt, self.initial, self.cap, (rng or random).random(), retry_after)
