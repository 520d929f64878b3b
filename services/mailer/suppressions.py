"""The suppression list (`suppressions` table): addresses that must not be mailed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.common.db.chunks import in_chunks
from services.common.db.outages import database_outage
from services.common.db.tables import suppressions
from services.common.suppression import (
    SuppressionChange,
    suppression_change,
    suppression_key,
)

_REASON = select(suppressions.c.reason).where(suppressions.c.email == bindparam("b_email"))
_REASONS = select(suppressions.c.email, suppressions.c.reason).where(
    suppressions.c.email.in_(bindparam("b_emails", expanding=True))
)


class SuppressionStore:
    """Reads and adds suppressions; the key is the normalised address."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reason(self, address: str) -> str | None:
        """Why the address is suppressed, or None when it may be mailed."""
        with database_outage("suppression"), self._engine.connect() as conn:
            return conn.execute(_REASON, {"b_email": suppression_key(address)}).scalar_one_or_none()

    def reasons(self, addresses: Iterable[str]) -> dict[str, str]:
        """`reason` for many addresses in one read: the suppressed ones, keyed as given."""
        wanted: dict[str, list[str]] = {}
        for address in addresses:
            wanted.setdefault(suppression_key(address), []).append(address)
        keys = list(wanted)
        found: dict[str, str] = {}
        with database_outage("suppression"), self._engine.connect() as conn:
            for chunk in in_chunks(keys):
                rows = conn.execute(_REASONS, {"b_emails": chunk})
                for email, reason in rows.tuples():
                    for address in wanted[email]:
                        found[address] = reason
        return found

    def add(self, address: str, reason: str, source: str, now: datetime) -> bool:
        """Suppress the address; False when its row already said as much.

        `suppression_change` decides against the existing row: a hard bounce widens an
        unsubscribe (marketing only) to all mail, anything else keeps the first reason. A
        concurrent writer of the same row costs one more round (the insert conflicts, or the
        conditional update finds another reason), never an error.
        """
        key = suppression_key(address)
        row = {"reason": reason, "source": source[:200], "created_at": now}
        with database_outage("suppression"):
            for _ in range(2):
                try:
                    with self._engine.begin() as conn:
                        existing = conn.execute(_REASON, {"b_email": key}).scalar_one_or_none()
                        change = suppression_change(existing, reason)
                        if change is SuppressionChange.INSERT:
                            conn.execute(insert(suppressions).values(email=key, **row))
                            return True
                        if change is SuppressionChange.KEEP:
                            return False
                        widened = conn.execute(
                            update(suppressions)
                            .where(suppressions.c.email == key, suppressions.c.reason == existing)
                            .values(**row)
                        )
                        if widened.rowcount:
                            return True
                except IntegrityError:
                    continue
        return False
