"""The `message_refs` table: what the ref inside a recipient token names.

The mailer records one row per email it sends (`record_many`, one statement per batch) before
the email leaves; the feedback service looks refs up (`find`) when a recipient clicks or a
bounce arrives, and prunes rows once every token naming them has expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, bindparam, delete, insert, select

from services.common.db.outages import database_outage
from services.common.db.tables import message_refs
from services.common.unsubscribe_token import new_ref

_FIND = select(message_refs).where(message_refs.c.ref == bindparam("b_ref"))


@dataclass(frozen=True)
class MessageRef:
    """One sent email, as a token's ref names it."""

    ref: str
    idempotency_key: str
    campaign: str
    category: str
    profile_id: str
    email: str  # the address the email went to: what a bounce or an unsubscribe suppresses
    message_id: str  # the trigger's messageId, so feedback joins the trigger's other outcomes
    sent_at: datetime
    expires_at: datetime  # the latest expiry of any token naming this ref


def message_ref(
    *,
    idempotency_key: str,
    campaign: str,
    category: str,
    profile_id: str,
    email: str,
    message_id: str,
    now: datetime,
    ttl: timedelta,
) -> MessageRef:
    """A new row for an email about to be sent; `ttl` is the longest token lifetime in use
    (the larger of the unsubscribe and bounce TTLs)."""
    return MessageRef(
        new_ref(),
        idempotency_key,
        campaign,
        category,
        profile_id,
        email,
        message_id,
        now,
        now + ttl,
    )


class MessageRefStore:
    """Writes, finds and prunes refs; database outages become `TransientFailure`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record_many(self, refs: Sequence[MessageRef]) -> None:
        """Insert the rows in one statement. Refs are random, so no row ever conflicts."""
        if not refs:
            return
        with database_outage("message refs"), self._engine.begin() as conn:
            # vars(), not asdict(): the fields are flat, and asdict's deep copy costs as much
            # as the insert itself at a mailer's rate
            conn.execute(insert(message_refs), [vars(ref) for ref in refs])

    def find(self, ref: str) -> MessageRef | None:
        with database_outage("message refs"), self._engine.connect() as conn:
            row = conn.execute(_FIND, {"b_ref": ref}).mappings().one_or_none()
        if row is None:
            return None
        values = dict(row)
        for name in ("sent_at", "expires_at"):  # SQLite hands back naive UTC datetimes
            if values[name].tzinfo is None:
                values[name] = values[name].replace(tzinfo=UTC)
        return MessageRef(**values)

    def prune(self, now: datetime, limit: int = 10_000) -> int:
        """Delete up to `limit` rows whose tokens have all expired; how many went."""
        doomed = select(message_refs.c.ref).where(message_refs.c.expires_at < now).limit(limit)
        with database_outage("message refs"), self._engine.begin() as conn:
            result = conn.execute(delete(message_refs).where(message_refs.c.ref.in_(doomed)))
        return int(result.rowcount or 0)
