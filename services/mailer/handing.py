"""A poll's claimed requests through SMTP: compose, save their refs, hand over at once, record
each end.

The poll's `message_refs` rows are saved in one statement before any of its emails leaves, so
every unsubscribe link and return path out there names a row; if that write fails, the whole
poll is held and nothing is sent.

Before a message's final dot leaves, its row turns `handing` (`ClaimStore.hand_many`, one
statement for every message the server awaits in one round of replies); if that write fails,
those messages are not sent. `sent` rows are saved in groups as replies come in, each at most
`MARK_DELAY_S` after its reply (or once `MARK_BATCH` wait). A crash therefore leaves `handing`
exactly the messages that may have reached the server, which the next holder settles `unknown`
rather than sending twice, and `pending` only messages that certainly did not. A request's
report is final only once its `sent` row is saved; if saving fails, the email went out but the
row says handing, and the report says so instead (a hold, or a failure).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Protocol

from services.common.errors import InvalidInput, TransientFailure
from services.common.message_refs import MessageRef
from services.mailer import metrics
from services.mailer.claims import SentRow
from services.mailer.composer import Composer
from services.mailer.rows import Rows
from services.mailer.rules.handover import Row, Transaction, handover_verdict
from services.mailer.rules.retry import RetryTopic
from services.mailer.rules.verdict import Send, refused
from services.mailer.slots import Guarded, Slot
from services.mailer.smtp import Envelope, Handed

log = logging.getLogger(__name__)

MARK_DELAY_S = 0.02
MARK_BATCH = 100


class RefRecorder(Protocol):
    """Saves the refs recipient tokens name (`MessageRefStore`)."""

    def record_many(self, refs: Sequence[MessageRef]) -> None: ...


class MessagePool(Protocol):
    """Hands messages to SMTP servers (`SmtpPool`)."""

    def send_many(
        self,
        envelopes: Sequence[Envelope],
        idle: float | None = None,
        before_data: Callable[[list[int]], Collection[int]] | None = None,
    ) -> Iterator[Handed | None]: ...


class Handing:
    """The SMTP stage of a poll."""

    def __init__(
        self,
        composer: Composer,
        pool: MessagePool,
        refs: RefRecorder,
        rows: Rows,
        retries: Sequence[RetryTopic],
        clock: Callable[[], datetime],
    ) -> None:
        self._composer = composer
        self._pool = pool
        self._refs = refs
        self._rows = rows
        self._retries = tuple(retries)
        self._clock = clock

    def send(self, slots: Sequence[Slot], now: datetime) -> None:
        """Every claimed request ends with a report: sent, refused, failed, retried or held."""
        ready: list[Slot] = []
        envelopes: list[Envelope] = []
        for slot in slots:
            with Guarded([slot]):
                envelope = self._envelope(slot, now)
                if envelope is not None:
                    envelopes.append(envelope)
                    ready.append(slot)
        if ready:
            with Guarded(ready):  # an outage holds the whole poll: no email without its row
                self._refs.record_many([slot.composed.ref for slot in ready if slot.composed])
            if ready[0].report is not None:
                return
        marks: list[tuple[Slot, SentRow]] = []
        oldest = 0.0
        keys = [slot.request.idempotency_key for slot in ready]
        sending = self._pool.send_many(
            envelopes, idle=MARK_DELAY_S, before_data=lambda indexes: self._hand(keys, indexes)
        )
        for handed in sending:
            if handed is not None:
                self._ended(ready[handed.index], handed, marks)
                if len(marks) == 1:
                    oldest = time.monotonic()
            waited = time.monotonic() - oldest
            if marks and (handed is None or len(marks) >= MARK_BATCH or waited >= MARK_DELAY_S):
                self._save(marks)
        if marks:
            self._save(marks)

    def _hand(self, keys: Sequence[str], indexes: Sequence[int]) -> set[int]:
        """Record the messages at `indexes` as being handed over; those that may go out."""
        try:
            held = self._rows.claims.hand_many([keys[index] for index in indexes], self._clock())
        except TransientFailure as exc:
            log.warning("%d messages not sent: cannot record their handover: %s", len(indexes), exc)
            return set()
        except Exception:  # a bug: nothing goes out that its row does not account for
            log.exception("%d messages not sent: recording their handover failed", len(indexes))
            return set()
        if len(held) < len(indexes):
            log.warning(
                "%d claims were taken over before their messages left: not sent",
                len(indexes) - len(held),
            )
        return {index for index in indexes if keys[index] in held}

    def _envelope(self, slot: Slot, now: datetime) -> Envelope | None:
        """The composed message's envelope; None for a request that cannot become a message,
        whose claimed key is settled as failed."""
        request, campaign, templates = slot.request, slot.campaign, slot.templates
        assert campaign is not None and templates is not None
        try:
            slot.composed = self._composer.compose(request, campaign, templates, now)
        except InvalidInput as exc:
            log.warning(
                "cannot send %s (campaign %s): %s", request.idempotency_key, request.campaign, exc
            )
            slot.finish(self._rows.settle(request, refused(request, exc, now), now))
            return None
        return self._composer.envelope(request, slot.composed)

    def _ended(self, slot: Slot, handed: Handed, marks: list[tuple[Slot, SentRow]]) -> None:
        metrics.SEND_SECONDS.observe(handed.seconds)
        send = slot.waits_for
        assert isinstance(send, Send) and slot.composed is not None
        message_id = str(slot.composed.message["Message-ID"])
        ended = Transaction(handed.error, handed.reply, message_id, send.attempts, send.deadline)
        with Guarded([slot]):
            now = self._clock()
            step = handover_verdict(slot.request, ended, now, self._retries)
            if step.row is Row.SENT:
                marks.append((slot, (slot.request.idempotency_key, step.note, now)))
                slot.finish(step.report)
            else:
                slot.finish(self._rows.hand_over(slot.request, step, now))

    def _save(self, marks: list[tuple[Slot, SentRow]]) -> None:
        """The waiting `sent` rows in one transaction; if that fails, each says so."""
        with Guarded([slot for slot, _ in marks]):
            self._rows.claims.mark_sent_many([row for _, row in marks])
        marks.clear()
