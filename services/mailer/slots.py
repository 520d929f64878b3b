"""One request's progress through a poll (`Slot`), and what a failing step makes of it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from services.common.campaign_config import Campaign
from services.common.errors import TransientFailure
from services.common.models import EmailRequest, utcnow
from services.mailer.composer import Composed
from services.mailer.metrics import count
from services.mailer.rules.claim import Claim
from services.mailer.rules.report import Report, internal_error
from services.mailer.rules.verdict import UNASKED, Need, Send, Unasked
from services.mailer.templates import TemplateSet

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Slot:
    """What is known of one request so far, and its report once it has one."""

    request: EmailRequest
    campaign: Campaign | None = None
    templates: TemplateSet | None = None
    suppression: str | None | Unasked = UNASKED
    claim: Claim | Unasked = UNASKED
    waits_for: Need | Send | None = None
    composed: Composed | None = None
    report: Report | None = None

    def finish(self, report: Report) -> None:
        """The request's report, counted in the metrics."""
        self.report = report
        count(self.request, report)


class Guarded:
    """Run one step for these requests: an outage holds them, a bug fails them, and the rest of
    the poll goes on either way. (A class: the mailer enters it several times per email, and
    a generator-based context manager costs three times as much.)"""

    __slots__ = ("_slots",)

    def __init__(self, slots: Sequence[Slot]) -> None:
        self._slots = slots

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: TracebackType | None
    ) -> bool:
        if isinstance(exc, TransientFailure):
            for slot in self._slots:
                slot.report = Report(hold=f"database: {exc}", error=exc)
            return True
        if isinstance(exc, Exception):  # a bug must not stop the partition: dead-letter, go on
            keys = ", ".join(slot.request.idempotency_key for slot in self._slots[:5])
            log.error("unexpected error for %d requests (%s)", len(self._slots), keys, exc_info=exc)
            for slot in self._slots:
                slot.report = internal_error(slot.request, exc, utcnow())
            return True
        return False
