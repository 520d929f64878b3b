"""When a cached token must be replaced, how long IMS says it lives, and how long to back off."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

LifetimeUnit = Literal["seconds", "milliseconds"]


@dataclass(frozen=True)
class Token:
    """An IMS access token and its lifetime; the value never shows in a repr."""

    value: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime

    @property
    def lifetime(self) -> timedelta:
        return self.expires_at - self.issued_at

    def valid_at(self, now: datetime) -> bool:
        """Usable at `now`; the expiry instant itself is already too late."""
        return now < self.expires_at


def refresh_due_at(token: Token, share: float) -> datetime:
    """The instant `share` of the token's lifetime has passed."""
    return token.issued_at + token.lifetime * share


def should_refresh(token: Token | None, now: datetime, share: float) -> bool:
    """True once `share` (0 < share <= 1) of the lifetime has passed, or when there is no token.

    Refreshing at 80% rather than at expiry leaves the remaining 20% for IMS outages: the old
    token is still served while the refresh is retried.
    """
    return token is None or now >= refresh_due_at(token, share)


def lifetime(expires_in: object, unit: LifetimeUnit) -> timedelta:
    """IMS `expires_in` as a duration: seconds for client credentials, ms for the JWT exchange.

    Raises ValueError for a missing, non-numeric or non-positive value.
    """
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
        raise ValueError(f"expires_in must be a number, got {type(expires_in).__name__}")
    number = float(expires_in)
    if not number > 0:
        raise ValueError("expires_in must be positive")
    return timedelta(seconds=number) if unit == "seconds" else timedelta(milliseconds=number)
