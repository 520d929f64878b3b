"""Exponential back-off with full jitter, the one retry schedule every service uses."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    """`delay(attempt)` grows as base * 2**attempt up to `cap`, with full jitter.

    Full jitter (a uniform draw in [0, ceiling]) spreads reconnecting clients apart, so a
    recovered upstream is not hit by every replica at the same instant.
    """

    base: timedelta = timedelta(milliseconds=200)
    cap: timedelta = timedelta(seconds=30)

    def delay(
        self,
        attempt: int,
        retry_after: timedelta | None = None,
        rng: random.Random | None = None,
    ) -> timedelta:
        """Wait before attempt number `attempt` (0-based); never less than `retry_after`."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * (2 ** min(attempt, 30)))
        drawn = timedelta(seconds=(rng or random).uniform(0, ceiling))
        if retry_after is not None and retry_after > drawn:
            return retry_after
        return drawn
