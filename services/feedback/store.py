"""Recipient events and the suppressions they write, one database transaction per event.

`feedback_events` has one row per (sent email, kind of event): its primary key is what makes a
replayed unsubscribe or a DSN delivered twice change nothing. The row also holds the event's
outcome until Kafka acknowledges it (`published_at`), so an outcome lost to a crash between the
commit and the broker's acknowledgement is sent again (`unpublished`): the transactional outbox
pattern, with the event row as the outbox.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.common.db.outages import database_outage
from services.common.db.tables import feedback_events, profiles, suppressions
from services.common.errors import TransientFailure
from services.common.models import Outcome
from services.common.suppression import (
    HARD_BOUNCE,
    SuppressionChange,
    suppression_change,
    suppression_key,
)
from services.feedback.rules.bounces import soft_bounce_limit_reached
from services.feedback.rules.events import EventKind

EventKey = tuple[str, str]  # (ref, kind)

_ATTEMPTS = 3  # a concurrent writer of the same row costs one more round, never an error
_REASON = select(suppressions.c.reason).where(suppressions.c.email == bindparam("b_email"))
_PROFILE_EMAIL = select(profiles.c.email).where(profiles.c.profile_id == bindparam("b_id"))
_EVENT_EXISTS = select(feedback_events.c.ref).where(
    feedback_events.c.ref == bindparam("b_ref"), feedback_events.c.kind == bindparam("b_kind")
)
_SOFT_COUNT = select(func.count()).where(
    feedback_events.c.email == bindparam("b_email"),
    feedback_events.c.kind == EventKind.SOFT_BOUNCE.value,
    feedback_events.c.at >= bindparam("b_since"),
)


@dataclass(frozen=True)
class SoftBounceRule:
    """How soft bounces are counted: from `since` on, `limit` of them suppress."""

    since: datetime
    limit: int


@dataclass(frozen=True)
class NewEvent:
    """An event to record: the email it is about, its outcome, the suppression it asks for."""

    ref: str
    kind: EventKind
    email: str
    outcome: Outcome
    suppress: str | None
    source: str  # written to `suppressions.source`: who suppressed, and why


class _Conflict(Exception):
    """Another writer changed the suppression row between our read and our write."""


class Recorded(enum.StrEnum):
    NEW = "new"
    REPLAY = "replay"  # this email already had an event of this kind: nothing changed


@dataclass(frozen=True)
class RecordResult:
    recorded: Recorded
    outcome: Outcome  # as stored (a soft bounce's detail says the count and its effect)
    suppression: SuppressionChange | None = None


class FeedbackStore:
    """Reads and writes of the feedback service; database outages become `TransientFailure`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def suppression_reason(self, address: str) -> str | None:
        with database_outage("suppression"), self._engine.connect() as conn:
            reason = conn.execute(
                _REASON, {"b_email": suppression_key(address)}
            ).scalar_one_or_none()
        return None if reason is None else str(reason)

    def profile_email(self, profile_id: str) -> str | None:
        """The address of a profile (old-format tokens name the profile, not the email)."""
        with database_outage("profile"), self._engine.connect() as conn:
            email = conn.execute(_PROFILE_EMAIL, {"b_id": profile_id}).scalar_one_or_none()
        return None if email is None else str(email)

    def record(
        self, event: NewEvent, now: datetime, soft: SoftBounceRule | None = None
    ) -> RecordResult:
        """Record the event and apply its suppression in one transaction; a replay is a no-op.

        For a soft bounce, `soft` says how to count: when this one reaches the limit, the
        address is suppressed as a hard bounce in the same transaction.
        """
        with database_outage("feedback"):
            for attempt in range(_ATTEMPTS):
                try:
                    with self._engine.begin() as conn:
                        return self._record(conn, event, now, soft)
                except (IntegrityError, _Conflict):
                    if attempt == _ATTEMPTS - 1:
                        raise TransientFailure("suppression row kept changing; try again") from None
        raise AssertionError("unreachable")

    def _record(
        self, conn: Connection, event: NewEvent, now: datetime, soft: SoftBounceRule | None
    ) -> RecordResult:
        key = {"b_ref": event.ref, "b_kind": event.kind.value}
        if conn.execute(_EVENT_EXISTS, key).first() is not None:
            return RecordResult(Recorded.REPLAY, event.outcome)
        address = suppression_key(event.email)
        suppress, detail = event.suppress, dict(event.outcome.detail)
        if soft is not None:
            count = int(conn.execute(_SOFT_COUNT, {"b_email": address, "b_since": soft.since})
                        .scalar_one()) + 1  # fmt: skip
            detail["softBounces"] = str(count)
            if soft_bounce_limit_reached(count, soft.limit):
                suppress = HARD_BOUNCE
        change = None
        if suppress is not None:
            change = _suppress(conn, address, suppress, event.source, now)
            detail["suppression"] = f"{suppress}:{change.value}"
        outcome = replace(event.outcome, detail=detail)
        conn.execute(
            insert(feedback_events).values(
                ref=event.ref,
                kind=event.kind.value,
                email=address,
                at=now,
                outcome=_outcome_json(outcome),
                published_at=None,
            )
        )
        return RecordResult(Recorded.NEW, outcome, change)

    def unpublished(self, before: datetime, limit: int = 500) -> list[tuple[EventKey, Outcome]]:
        """Outcomes recorded before `before` that Kafka has not acknowledged yet."""
        query = (
            select(feedback_events.c.ref, feedback_events.c.kind, feedback_events.c.outcome)
            .where(feedback_events.c.published_at.is_(None), feedback_events.c.at < before)
            .order_by(feedback_events.c.at)
            .limit(limit)
        )
        with database_outage("feedback"), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [((ref, kind), _outcome_from_json(text)) for ref, kind, text in rows]

    def mark_published(self, keys: Sequence[EventKey], now: datetime) -> None:
        if not keys:
            return
        statement = (
            update(feedback_events)
            .where(
                feedback_events.c.ref == bindparam("b_ref"),
                feedback_events.c.kind == bindparam("b_kind"),
            )
            .values(published_at=bindparam("b_at"))
        )
        params = [{"b_ref": ref, "b_kind": kind, "b_at": now} for ref, kind in keys]
        with database_outage("feedback"), self._engine.begin() as conn:
            conn.execute(statement, params)

    def prune(self, before: datetime) -> int:
        """Delete published events recorded before `before`; how many went.

        Run every few minutes, each call removes a few minutes' worth of old events."""
        statement = delete(feedback_events).where(
            feedback_events.c.at < before, feedback_events.c.published_at.is_not(None)
        )
        with database_outage("feedback"), self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount or 0)


def _suppress(
    conn: Connection, address: str, reason: str, source: str, now: datetime
) -> SuppressionChange:
    """Apply `suppression_change` to the address's row. A concurrent writer (the mailer, another
    feedback replica) makes the insert or the guarded update fail; the caller retries."""
    existing = conn.execute(_REASON, {"b_email": address}).scalar_one_or_none()
    change = suppression_change(None if existing is None else str(existing), reason)
    values = {"reason": reason, "source": source[:200], "created_at": now}
    if change is SuppressionChange.INSERT:
        conn.execute(insert(suppressions).values(email=address, **values))
    elif change is SuppressionChange.WIDEN:
        result = conn.execute(
            update(suppressions)
            .where(suppressions.c.email == address, suppressions.c.reason == existing)
            .values(**values)
        )
        if result.rowcount != 1:
            raise _Conflict(address)
    return change


def _outcome_json(outcome: Outcome) -> str:
    record = outcome.to_record()
    record["at"] = outcome.at.isoformat()
    return json.dumps(record, sort_keys=True)


def _outcome_from_json(text: str) -> Outcome:
    record = json.loads(text)
    at = datetime.fromisoformat(record["at"])
    record["at"] = at if at.tzinfo else at.replace(tzinfo=UTC)
    return Outcome.from_record(record)
