"""One poll's email requests, each from its verdict to its report; the loop publishes reports.

A request's path: `rules.verdict` on what needs no database (campaign, validity, notBefore);
the poll's suppression entries in one read, and `verdict` again; the poll's claims in one
statement, and `verdict` again; the claimed ones composed, their `message_refs` rows saved, and
handed to the SMTP pool together (`Handing`), where `rules.handover` decides each transaction's
end. `Rows` writes what a verdict says to the database. No Kafka here: the loop stores offsets
only after publishing the reports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from services.common.models import EmailRequest
from services.mailer.campaigns import CampaignCatalog
from services.mailer.composer import Composer, RecipientTokens
from services.mailer.handing import Handing, MessagePool, RefRecorder
from services.mailer.rows import ClaimRows, Rows, SuppressionList
from services.mailer.rules.report import Report
from services.mailer.rules.retry import RetryTopic
from services.mailer.rules.verdict import Need, Publish, Send, Settle, verdict
from services.mailer.slots import Guarded, Slot

log = logging.getLogger(__name__)


class Delivery:
    """The per-request pipeline, run by the loop's thread for a whole poll at a time."""

    def __init__(
        self,
        *,
        catalog: CampaignCatalog,
        claims: ClaimRows,
        suppressions: SuppressionList,
        pool: MessagePool,
        refs: RefRecorder,
        retries: Sequence[RetryTopic],
        tokens: RecipientTokens,
        message_id_domain: str = "",
        clock: Callable[[], datetime],
    ) -> None:
        self._catalog = catalog
        self._rows = Rows(claims, suppressions)
        self._retries = tuple(retries)
        self._clock = clock
        composer = Composer(tokens, message_id_domain)
        self._handing = Handing(composer, pool, refs, self._rows, self._retries, clock)

    def handle_many(self, requests: Sequence[EmailRequest]) -> list[Report]:
        """One report per request, in order; a failure of one request's step is its own.

        The database is asked once per stage for the whole poll (suppressions, then claims),
        and the claimed messages are all handed to the SMTP pool at once. Each request is still
        decided on its own rows, and each sent one is recorded `sent` before its report.
        """
        now = self._clock()
        slots = [Slot(request) for request in requests]
        for slot in slots:
            with Guarded([slot]):
                self._look_up_campaign(slot)
                self._advance(slot, now)
        asking = [slot for slot in slots if slot.waits_for is Need.SUPPRESSION]
        if asking:
            with Guarded(asking):
                reasons = self._rows.suppressions.reasons(s.request.email for s in asking)
                for slot in asking:
                    slot.suppression = reasons.get(slot.request.email)
            self._advance_all(asking, now)
        claiming = [slot for slot in slots if slot.waits_for is Need.CLAIM and slot.report is None]
        if claiming:
            with Guarded(claiming):
                claims = self._rows.claims.claim_many([s.request for s in claiming], now)
                for slot, claim in zip(claiming, claims, strict=True):
                    slot.claim = claim
            self._advance_all(claiming, now)
        sending = [
            slot for slot in slots if isinstance(slot.waits_for, Send) and slot.report is None
        ]
        if sending:
            self._handing.send(sending, now)
        return [_reported(slot) for slot in slots]

    def _look_up_campaign(self, slot: Slot) -> None:
        found = self._catalog.lookup(slot.request.campaign)
        if found is None:
            # Most likely the routing file is ahead of this instance: the verdict waits and
            # tries again, and dead-letters only once every retry is spent.
            log.warning("campaign %r is not configured (yet)", slot.request.campaign)
        else:
            slot.campaign, slot.templates = found

    def _advance_all(self, slots: Sequence[Slot], now: datetime) -> None:
        for slot in slots:
            if slot.report is None:
                with Guarded([slot]):
                    self._advance(slot, now)

    def _advance(self, slot: Slot, now: datetime) -> None:
        """Ask `verdict` with what is known of the request, and do what it says."""
        request = slot.request
        step = verdict(request, slot.campaign, slot.suppression, slot.claim, now, self._retries)
        if isinstance(step, Publish):
            slot.finish(step.report)
        elif isinstance(step, Settle):
            slot.finish(self._rows.settle(request, step, now))
        else:
            slot.waits_for = step


def _reported(slot: Slot) -> Report:
    assert slot.report is not None, f"{slot.request.idempotency_key} ended without a report"
    return slot.report
