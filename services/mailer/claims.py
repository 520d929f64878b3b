"""Idempotency claims on the `deliveries` table: no SMTP traffic for a key without its claim.

A claim is a row in state `pending` naming the instance that holds it; just before a message's
final dot goes to the SMTP server its row turns `handing`. It ends `sent`, `failed`, `ignored`
(suppressed), `expired`, or `unknown` (the connection dropped after the message data, or the
holder went silent while handing it over: it may have been delivered, so nothing resends it
without an operator). A pending row whose holder let go (`claimed_by` NULL, after a transient
failure) or went silent for longer than the claim timeout (a crash) may be taken over; a
`handing` row whose holder went silent is settled `unknown` instead. Every statement is
portable SQL, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from services.common.db.chunks import in_chunks
from services.common.db.outages import database_outage
from services.common.db.tables import deliveries
from services.common.models import EmailRequest
from services.mailer.claim_statements import (
    ABANDONED,
    HAND,
    ROWS,
    TAKEOVER,
    finish_statement,
    insert_statement,
)
from services.mailer.rules.claim import Claim, ClaimState, DeliveryStatus

log = logging.getLogger(__name__)

__all__ = ["Claim", "ClaimState", "ClaimStore", "DeliveryStatus", "SentRow"]

# (idempotency key, SMTP Message-ID, when): one accepted message's `sent` row
SentRow = tuple[str, str, datetime]

# The states of a row some instance holds: another one waits (busy) until it ends or goes stale.
_HELD = (DeliveryStatus.PENDING, DeliveryStatus.HANDING)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every value this module writes is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ClaimStore:
    """Claims and final statuses of deliveries, one short transaction per call."""

    def __init__(self, engine: Engine, instance: str, timeout: timedelta) -> None:
        self._engine = engine
        self._instance = instance
        self._timeout = timeout

    def claim(self, request: EmailRequest, now: datetime) -> Claim:
        """Insert a pending row, or take over a released or stale one; never both for two callers.

        The takeover is one conditional UPDATE, so of two instances racing for a stale claim the
        database lets exactly one win.
        """
        return self.claim_many([request], now)[0]

    def claim_many(self, requests: Sequence[EmailRequest], now: datetime) -> list[Claim]:
        """`claim` for every request of a poll, in one transaction; one answer per request.

        One multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING` claims the new keys; only
        the keys that already had a row go on to the conditional takeover and a read of their
        row, so each key is still decided on its own row. A key twice in `requests` is claimed
        once; its later copies find it busy, as they would in two separate polls.
        """
        first: dict[str, EmailRequest] = {}
        for request in requests:
            first.setdefault(request.idempotency_key, request)
        claims: dict[str, Claim] = {}
        with database_outage("claim"), self._engine.begin() as conn:
            # Keys in sorted order: two instances inserting overlapping batches then wait
            # on each other in the same order, never in a cycle (a PostgreSQL deadlock).
            ordered = [first[key] for key in sorted(first)]
            inserted = _insert_many(conn, ordered, DeliveryStatus.PENDING, now, self._instance)
            for key in inserted:
                claims[key] = Claim(ClaimState.CLAIMED, DeliveryStatus.PENDING, 1)
            known = [key for key in sorted(first) if key not in inserted]
            taken: dict[str, int] = {}
            abandoned: set[str] = set()
            rows: dict[str, Any] = {}
            stale = now - self._timeout
            for chunk in in_chunks(known):
                params = {"b_keys": chunk, "b_now": now, "b_stale": stale}
                settled = list(conn.execute(ABANDONED, params).scalars())
                if settled:
                    log.warning(
                        "%d deliveries settled unknown and dead-lettered, never resent: their "
                        "holder went silent while handing them to the SMTP server (%s)",
                        len(settled),
                        ", ".join(settled[:5]),
                    )
                abandoned.update(settled)
                takeover = conn.execute(TAKEOVER, {**params, "b_instance": self._instance})
                taken.update((row.idempotency_key, row.attempts) for row in takeover)
                for row in conn.execute(ROWS, {"b_keys": chunk}):
                    rows[row.idempotency_key] = row
        for key in known:
            row = rows[key]
            status = DeliveryStatus(row.status)
            if key in taken:
                claims[key] = Claim(ClaimState.CLAIMED, status, taken[key])
            elif status in _HELD:
                held_until = _aware(row.claimed_at) + self._timeout
                claims[key] = Claim(ClaimState.BUSY, status, row.attempts, held_until=held_until)
            else:
                claims[key] = Claim(
                    ClaimState.SETTLED,
                    status,
                    row.attempts,
                    row.smtp_message_id,
                    abandoned=key in abandoned,
                )
        answers: list[Claim] = []
        for request in requests:
            key = request.idempotency_key
            if first.pop(key, None) is not None:
                answers.append(claims[key])
                continue
            # A later copy of a key claimed or held in this very batch: busy, like a key held
            # by another live instance; a settled key answers the same for every copy.
            answer = claims[key]
            if answer.state is not ClaimState.SETTLED:
                held_until = answer.held_until or now + self._timeout
                answer = Claim(
                    ClaimState.BUSY, answer.status, answer.attempts, held_until=held_until
                )
            answers.append(answer)
        return answers

    def settle_unclaimed(
        self, request: EmailRequest, status: DeliveryStatus, now: datetime, error: str
    ) -> Claim:
        """Record a final status for a key never sent (suppressed, expired, unrenderable).

        Returns the existing row's state instead when the key is already known, so a replayed
        request that was sent long ago is reported as sent, not as expired.
        """
        with database_outage("claim"), self._engine.begin() as conn:
            if _insert_many(conn, [request], status, now, None, error):
                return Claim(ClaimState.SETTLED, status, 0)
            row = conn.execute(
                select(
                    deliveries.c.status, deliveries.c.attempts, deliveries.c.smtp_message_id
                ).where(deliveries.c.idempotency_key == request.idempotency_key)
            ).one()
        existing = DeliveryStatus(row.status)
        if existing is DeliveryStatus.PENDING:
            # Never sent by anyone who could still send it: settle it now.
            self._finish(request.idempotency_key, status, now, error=error, only_pending=True)
            return Claim(ClaimState.SETTLED, status, row.attempts)
        return Claim(ClaimState.SETTLED, existing, row.attempts, row.smtp_message_id)

    def hand_many(self, keys: Sequence[str], now: datetime) -> set[str]:
        """These claimed messages are about to go out: a crash from now on may have sent them.

        Returns the keys this instance still held; the others' messages must not be sent.
        """
        held: set[str] = set()
        with database_outage("claim"), self._engine.begin() as conn:
            for chunk in in_chunks(keys):
                params = {"b_keys": chunk, "b_now": now, "b_instance": self._instance}
                held.update(conn.execute(HAND, params).scalars())
        return held

    def mark_sent(self, key: str, smtp_message_id: str, now: datetime) -> None:
        """The server accepted the message: final, whoever holds the row now."""
        self.mark_sent_many([(key, smtp_message_id, now)])

    def mark_sent_many(self, sent: Sequence[SentRow]) -> None:
        """`mark_sent` for several messages, in one transaction."""
        params = [
            {
                "b_key": key,
                "b_status": DeliveryStatus.SENT.value,
                "b_now": now,
                "b_smtp_message_id": smtp_message_id[:300],
            }
            for key, smtp_message_id, now in sent
        ]
        with database_outage("claim"), self._engine.begin() as conn:
            conn.execute(finish_statement(("smtp_message_id",), False), params)

    def mark_failed(self, key: str, error: str, now: datetime) -> None:
        self._finish(key, DeliveryStatus.FAILED, now, error=error)

    def release(self, key: str, error: str, now: datetime) -> None:
        """Give the claim back after a failure that certainly sent nothing; a retry re-claims it."""
        self._execute(
            update(deliveries)
            .where(
                deliveries.c.idempotency_key == key,
                deliveries.c.status.in_([status.value for status in _HELD]),
                deliveries.c.claimed_by == self._instance,
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                claimed_by=None,
                updated_at=now,
                error=error[:2000],
            )
        )

    def mark_unknown(self, key: str, error: str, now: datetime) -> None:
        """The message may have been delivered: settle the key so no redelivery resends it."""
        self._finish(key, DeliveryStatus.UNKNOWN, now, error=error)

    def _finish(
        self,
        key: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        smtp_message_id: str | None = None,
        error: str | None = None,
        only_pending: bool = False,
    ) -> None:
        params: dict[str, object] = {"b_key": key, "b_status": status.value, "b_now": now}
        fields: list[str] = []
        if smtp_message_id is not None:
            params["b_smtp_message_id"] = smtp_message_id[:300]
            fields.append("smtp_message_id")
        if error is not None:
            params["b_error"] = error[:2000]
            fields.append("error")
        statement = finish_statement(tuple(fields), only_pending)
        with database_outage("claim"), self._engine.begin() as conn:
            conn.execute(statement, params)

    def _execute(self, statement: object) -> None:
        with database_outage("claim"), self._engine.begin() as conn:
            conn.execute(statement)  # type: ignore[call-overload]


def _insert_many(
    conn: Connection,
    requests: Sequence[EmailRequest],
    status: DeliveryStatus,
    now: datetime,
    holder: str | None,
    error: str | None = None,
) -> set[str]:
    """Insert a row for each new key; returns the keys inserted (the others already exist).

    Conflicts are ignored by the database rather than caught as duplicate-key errors, which
    PostgreSQL would let poison the whole transaction. SQLAlchemy sends the rows as multi-row
    VALUES statements ("insertmanyvalues"), each returning the keys it inserted.
    """
    if not requests:
        return set()
    rows = [
        {
            "idempotency_key": request.idempotency_key,
            "campaign": request.campaign,
            "profile_id": request.profile_id,
            "email": request.email,
            "status": status.value,
            "claimed_by": holder,
            "claimed_at": now,
            "updated_at": now,
            "attempts": 1 if holder else 0,
            "error": error,
        }
        for request in requests
    ]
    result = conn.execute(insert_statement(conn.dialect.name), rows)
    return set(result.scalars())
