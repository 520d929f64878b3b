"""The SQL statements of the claims, built once per process.

SQLAlchemy then only binds values on the hot path, instead of computing a cache key for a new
statement object on every email. Every statement is portable SQL apart from the insert's
conflict clause, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert, Update, and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql.elements import BindParameter

from services.common.db.tables import deliveries
from services.mailer.rules.claim import DeliveryStatus


@cache
def insert_statement(dialect: str) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING`: SQLite's `OR IGNORE` form, which SQLAlchemy can
    cache (its `on_conflict_do_nothing` construct is recompiled on every call)."""
    # RETURNING, not rowcount: psycopg reports -1 for this statement.
    key = deliveries.c.idempotency_key
    if dialect == "postgresql":
        return pg_insert(deliveries).on_conflict_do_nothing().returning(key)
    return insert(deliveries).prefix_with("OR IGNORE").returning(key)


_KEYS: BindParameter[Any] = bindparam("b_keys", expanding=True)

# Take over the pending rows whose holder let go or went silent: one conditional UPDATE, so
# of two instances racing for a stale claim the database lets exactly one win.
TAKEOVER = (
    update(deliveries)
    .where(
        deliveries.c.idempotency_key.in_(_KEYS),
        deliveries.c.status == DeliveryStatus.PENDING.value,
        or_(deliveries.c.claimed_by.is_(None), deliveries.c.claimed_at < bindparam("b_stale")),
    )
    .values(
        claimed_by=bindparam("b_instance"),
        claimed_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
        attempts=deliveries.c.attempts + 1,
    )
    .returning(deliveries.c.idempotency_key, deliveries.c.attempts)
)

# The holder is about to send these messages' final dot: from now on a crash leaves a row that
# may have been delivered, which nobody takes over (`ABANDONED`). A key it no longer holds (taken
# over after the claim timeout) is not returned, and its message is not sent.
HAND = (
    update(deliveries)
    .where(
        deliveries.c.idempotency_key.in_(_KEYS),
        deliveries.c.status == DeliveryStatus.PENDING.value,
        deliveries.c.claimed_by == bindparam("b_instance"),
    )
    .values(status=DeliveryStatus.HANDING.value, updated_at=bindparam("b_now"))
    .returning(deliveries.c.idempotency_key)
)

# A holder that went silent while handing messages over may have delivered them: settle them
# `unknown` (as a connection lost after the data is) instead of letting another instance resend.
ABANDONED = (
    update(deliveries)
    .where(
        deliveries.c.idempotency_key.in_(_KEYS),
        deliveries.c.status == DeliveryStatus.HANDING.value,
        deliveries.c.claimed_at < bindparam("b_stale"),
    )
    .values(
        status=DeliveryStatus.UNKNOWN.value,
        updated_at=bindparam("b_now"),
        error="the instance handing the message to the SMTP server went silent; it may have "
        "been delivered",
    )
    .returning(deliveries.c.idempotency_key)
)

ROWS = select(
    deliveries.c.idempotency_key,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.smtp_message_id,
    deliveries.c.claimed_at,
).where(deliveries.c.idempotency_key.in_(_KEYS))


@cache
def finish_statement(fields: tuple[str, ...], only_pending: bool) -> Update:
    conditions = [deliveries.c.idempotency_key == bindparam("b_key")]
    if only_pending:
        conditions.append(deliveries.c.status == DeliveryStatus.PENDING.value)
    values: dict[str, BindParameter[Any]] = {
        "status": bindparam("b_status"),
        "updated_at": bindparam("b_now"),
    }
    values.update({name: bindparam(f"b_{name}") for name in fields})
    return update(deliveries).where(and_(*conditions)).values(**values)
