"""The records that cross service boundaries, as typed values.

Each mirrors one Avro schema in `schemas/`; `to_record` and `from_record` are the only places a
field name is spelled twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class OutcomeStatus(enum.StrEnum):
    """Terminal outcomes of a trigger; the Avro enum `OutcomeStatus` in upper case."""

    SENT = "sent"
    DUPLICATE = "duplicate"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"  # the campaign cannot be personalised: a required variable is missing
    UNMATCHED = "unmatched"
    UNROUTED = "unrouted"
    INVALID = "invalid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    UNKNOWN = "unknown"
    # What a recipient did with an email already sent (the feedback service): events about a
    # `sent` trigger, not terminal outcomes of a trigger of their own, so they are left out
    # when triggers in are balanced against outcomes out (`is_recipient_event`).
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"

    @property
    def is_recipient_event(self) -> bool:
        return self in _RECIPIENT_EVENTS


_RECIPIENT_EVENTS = frozenset(
    {OutcomeStatus.UNSUBSCRIBED, OutcomeStatus.BOUNCED, OutcomeStatus.COMPLAINED}
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Outcome:
    """What finally happened to one trigger."""

    status: OutcomeStatus
    message_id: str
    service: str
    reason: str | None = None
    trigger_id: str | None = None
    campaign: str | None = None
    profile_id: str | None = None
    idempotency_key: str | None = None
    at: datetime = field(default_factory=utcnow)
    detail: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`sent`, `suppressed:no_consent`, `skipped:missing_data`, `bounced:hard`...: the name
        dashboards and summaries use."""
        with_reason = (OutcomeStatus.SUPPRESSED, OutcomeStatus.SKIPPED, OutcomeStatus.BOUNCED)
        if self.status in with_reason and self.reason:
            return f"{self.status.value}:{self.reason}"
        return self.status.value

    def to_record(self) -> dict[str, Any]:
        return {
            "status": self.status.name,
            "reason": self.reason,
            "messageId": self.message_id,
            "triggerId": self.trigger_id,
            "campaign": self.campaign,
            "profileId": self.profile_id,
            "idempotencyKey": self.idempotency_key,
            "service": self.service,
            "at": self.at,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Outcome:
        return cls(
            status=OutcomeStatus[record["status"]],
            reason=record["reason"],
            message_id=record["messageId"],
            trigger_id=record["triggerId"],
            campaign=record["campaign"],
            profile_id=record["profileId"],
            idempotency_key=record["idempotencyKey"],
            service=record["service"],
            at=record["at"],
            detail=dict(record["detail"]),
        )


@dataclass(frozen=True)
class EmailRequest:
    """A decision to email one profile for one campaign."""

    idempotency_key: str
    campaign: str
    trigger_id: str
    message_id: str
    trigger_timestamp: datetime
    profile_id: str
    email: str
    first_name: str | None = None
    locale: str | None = None
    products: tuple[str, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    not_before: datetime | None = None
    expires_at: datetime | None = None
    attempt: int = 0
    replay: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "idempotencyKey": self.idempotency_key,
            "campaign": self.campaign,
            "triggerId": self.trigger_id,
            "messageId": self.message_id,
            "triggerTimestamp": self.trigger_timestamp,
            "profileId": self.profile_id,
            "email": self.email,
            "firstName": self.first_name,
            "locale": self.locale,
            "products": list(self.products),
            "variables": dict(self.variables),
            "notBefore": self.not_before,
            "expiresAt": self.expires_at,
            "attempt": self.attempt,
            "replay": self.replay,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EmailRequest:
        return cls(
            idempotency_key=record["idempotencyKey"],
            campaign=record["campaign"],
            trigger_id=record["triggerId"],
            message_id=record["messageId"],
            trigger_timestamp=record["triggerTimestamp"],
            profile_id=record["profileId"],
            email=record["email"],
            first_name=record["firstName"],
            locale=record["locale"],
            products=tuple(record["products"]),
            variables=dict(record["variables"]),
            not_before=record["notBefore"],
            expires_at=record["expiresAt"],
            attempt=record["attempt"],
            replay=record["replay"],
        )
