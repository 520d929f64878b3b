"""The dead-letter store of inbound mail: the `feedback_dead_letters` table.

A table rather than a Kafka topic: an inbound message has no topic, partition or offset to name
or re-drive to; what it needs is a person reading it (a vacation reply to the return path, a
provider's report in a format we do not parse), which a query does best; and it holds the
recipient's personal data, so it is pruned after `TRIGGERLINE_FEEDBACK_DEAD_LETTER_RETENTION`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, insert

from services.common.db.outages import database_outage
from services.common.db.tables import feedback_dead_letters
from services.common.dlq import DEAD_LETTER_MAX_VALUE


@dataclass(frozen=True)
class DeadLetter:
    """One inbound message kept for a person, with why it could not be used."""

    received_at: datetime
    reason: str
    detail: str
    mail_from: str | None
    rcpt_tos: Sequence[str]
    content: bytes


class DeadLetterStore:
    """Keeps and prunes dead letters; database outages become `TransientFailure` (the SMTP
    listener then answers 451, and the sending MTA tries again later)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def keep(self, letter: DeadLetter) -> None:
        """Store the message, cut to the dead-letter size bound; size and hash are of the whole."""
        values = {
            "received_at": letter.received_at,
            "reason": letter.reason[:64],
            "detail": letter.detail[:2000],
            "mail_from": (letter.mail_from or "")[:320] or None,
            "rcpt_to": ", ".join(letter.rcpt_tos)[:4000],
            "size": len(letter.content),
            "sha256": hashlib.sha256(letter.content).hexdigest(),
            "content": letter.content[:DEAD_LETTER_MAX_VALUE],
        }
        with database_outage("dead-letter"), self._engine.begin() as conn:
            conn.execute(insert(feedback_dead_letters).values(**values))

    def prune(self, before: datetime) -> int:
        """Delete dead letters received before `before`; how many went."""
        statement = delete(feedback_dead_letters).where(
            feedback_dead_letters.c.received_at < before
        )
        with database_outage("dead-letter"), self._engine.begin() as conn:
            return int(conn.execute(statement).rowcount or 0)
