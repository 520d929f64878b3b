"""The suppression list (`suppressions` table): addresses that must not be mailed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from services.common.db.chunks import in_chunks
from services.common.db.tables import suppressions
from services.common.errors import TransientFailure
from services.common.suppression import suppression_key

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
        try:
            with self._engine.connect() as conn:
                return conn.execute(
                    _REASON, {"b_email": suppression_key(address)}
                ).scalar_one_or_none()
        except OperationalError as exc:
            raise TransientFailure(f"suppression database unavailable: {exc.orig}") from exc

    def reasons(self, addresses: Iterable[str]) -> dict[str, str]:
        """`reason` for many addresses in one read: the suppressed ones, keyed as given."""
        wanted: dict[str, list[str]] = {}
        for address in addresses:
            wanted.setdefault(suppression_key(address), []).append(address)
        keys = list(wanted)
        found: dict[str, str] = {}
        try:
            with self._engine.connect() as conn:
                for chunk in in_chunks(keys):
                    rows = conn.execute(_REASONS, {"b_emails": chunk})
                    for email, reason in rows.tuples():
                        for address in wanted[email]:
                            found[address] = reason
        except OperationalError as exc:
            raise TransientFailure(f"suppression database unavailable: {exc.orig}") from exc
        return found

    def add(self, address: str, reason: str, source: str, now: datetime) -> bool:
        """Suppress the address; False when it already was (the first reason is kept)."""
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(suppressions).values(
                        email=suppression_key(address),
                        reason=reason,
                        source=source[:200],
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False
        except OperationalError as exc:
            raise TransientFailure(f"suppression database unavailable: {exc.orig}") from exc
        return True
