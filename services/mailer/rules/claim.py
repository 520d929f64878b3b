"""Idempotency claims as values: the states of a `deliveries` row and the answer to a claim."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class DeliveryStatus(enum.StrEnum):
    """Row states, in the spirit of Adobe Message Center."""

    PENDING = "pending"
    HANDING = "handing"  # its message is going to the SMTP server: it may have arrived
    SENT = "sent"
    FAILED = "failed"
    IGNORED = "ignored"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class ClaimState(enum.Enum):
    CLAIMED = "claimed"  # this instance may send now
    SETTLED = "settled"  # the key already reached a final status
    BUSY = "busy"  # another live instance holds it


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: whether to send, and what the row says otherwise."""

    state: ClaimState
    status: DeliveryStatus
    attempts: int
    smtp_message_id: str | None = None
    held_until: datetime | None = None
    # Settled `unknown` by this very claim: its holder went silent while handing it over. The
    # one instance that settles it reports it and dead-letters it for an operator's decision.
    abandoned: bool = False
