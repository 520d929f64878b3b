"""Writes what a verdict says to the `deliveries` and `suppressions` tables, and reports."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from services.common.models import EmailRequest
from services.mailer import metrics
from services.mailer.claims import SentRow
from services.mailer.rules.claim import Claim, DeliveryStatus
from services.mailer.rules.handover import Handover, Row
from services.mailer.rules.report import Report, already
from services.mailer.rules.verdict import Settle

log = logging.getLogger(__name__)


class ClaimRows(Protocol):
    """The claims of idempotency keys (`ClaimStore`)."""

    def claim_many(self, requests: Sequence[EmailRequest], now: datetime) -> list[Claim]: ...

    def settle_unclaimed(
        self, request: EmailRequest, status: DeliveryStatus, now: datetime, error: str
    ) -> Claim: ...

    def hand_many(self, keys: Sequence[str], now: datetime) -> set[str]: ...

    def mark_sent_many(self, sent: Sequence[SentRow]) -> None: ...

    def mark_failed(self, key: str, error: str, now: datetime) -> None: ...

    def mark_unknown(self, key: str, error: str, now: datetime) -> None: ...

    def release(self, key: str, error: str, now: datetime) -> None: ...


class SuppressionList(Protocol):
    """The suppression list (`SuppressionStore`)."""

    def reasons(self, addresses: Iterable[str]) -> dict[str, str]: ...

    def add(self, address: str, reason: str, source: str, now: datetime) -> bool: ...


class Rows:
    """The database side of a verdict; raises `TransientFailure` while the database is down."""

    def __init__(self, claims: ClaimRows, suppressions: SuppressionList) -> None:
        self.claims = claims
        self.suppressions = suppressions

    def settle(self, request: EmailRequest, step: Settle, now: datetime) -> Report:
        """Record a final status for a key never sent, then report (`Settle`)."""
        claim = self.claims.settle_unclaimed(request, step.status, now, step.why)
        if step.existing_wins and claim.status is not step.status:
            return already(request, claim, now)
        return step.report

    def hand_over(self, request: EmailRequest, step: Handover, now: datetime) -> Report:
        """Record how a transaction that delivered nothing ended, then report. (A sent row is
        saved with others, `mark_sent_many`.)"""
        key = request.idempotency_key
        if step.row is Row.FAILED:
            self.claims.mark_failed(key, step.note, now)
            if step.suppress is not None:
                self.suppressions.add(request.email, step.suppress, f"mailer: {step.note}", now)
                metrics.SUPPRESSED.labels(request.campaign, step.suppress).inc()
            log.info("%s rejected for %s: %s", key, request.campaign, step.note)
        elif step.row is Row.UNKNOWN:
            self.claims.mark_unknown(key, step.note, now)
        elif step.row is Row.RELEASED:
            self.claims.release(key, step.note, now)
            if step.settle is not None:
                return self.settle(request, step.settle, now)
        return step.report
