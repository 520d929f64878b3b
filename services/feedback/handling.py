"""What the feedback service does with an unsubscribe or an inbound report: rules, then stores.

Every method is synchronous (the database driver is); the HTTP and SMTP adapters call them in
a worker thread. A database outage surfaces as `TransientFailure`: the page says "try again",
the SMTP listener answers 451 so the sending MTA retries.
"""

from __future__ import annotations

import email
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy

from services.common.models import Outcome
from services.common.suppression import SuppressionChange, applies_to
from services.common.unsubscribe_token import TokenPurpose
from services.feedback import metrics
from services.feedback.dead_letters import DeadLetter, DeadLetterStore
from services.feedback.publishing import OutcomePublisher
from services.feedback.recipients import Recipient, Recipients, Refusal
from services.feedback.rules.events import (
    EventDecision,
    EventKind,
    complaint_decision,
    delivery_decision,
    unsubscribe_decision,
)
from services.feedback.rules.references import report_references
from services.feedback.rules.reports import (
    ComplaintReport,
    DeliveryReport,
    Unreadable,
    parse_report,
)
from services.feedback.rules.unsubscribe import STATUS, PageKind, mask_address, refusal_page
from services.feedback.store import FeedbackStore, NewEvent, Recorded, RecordResult, SoftBounceRule

log = logging.getLogger(__name__)

SERVICE = "feedback"


@dataclass(frozen=True)
class FeedbackOptions:
    bounce_domain: str
    soft_bounce_limit: int
    soft_bounce_window: timedelta


@dataclass(frozen=True)
class PageAnswer:
    """Which page to show, with which HTTP status, naming which (masked) address."""

    kind: PageKind
    status: int
    address: str | None = None


class ReportResult(enum.StrEnum):
    RECORDED = "recorded"  # a new event: outcome published, suppression written if due
    REPLAY = "replay"  # this email already had this event: nothing changed
    IGNORED = "ignored"  # a readable report that asks for nothing (a success DSN, not-spam)
    DEAD_LETTER = "dead_letter"  # kept for a person, with its reason


class Feedback:
    """The unsubscribe endpoint's and the SMTP listener's work, behind their protocols."""

    def __init__(
        self,
        recipients: Recipients,
        store: FeedbackStore,
        dead_letters: DeadLetterStore,
        publisher: OutcomePublisher,
        options: FeedbackOptions,
    ) -> None:
        self._recipients = recipients
        self._store = store
        self._dead_letters = dead_letters
        self._publisher = publisher
        self._options = options

    # -- HTTP ------------------------------------------------------------------------------------

    def preview(self, token: str, now: datetime) -> PageAnswer:
        """GET: the confirmation page, or why the link cannot be used. Changes nothing."""
        found = self._recipients.resolve(token, TokenPurpose.UNSUBSCRIBE, now)
        if isinstance(found, Refusal):
            return self._refused(found)
        masked = mask_address(found.email)
        reason = self._store.suppression_reason(found.email)
        if reason is not None and applies_to(reason, found.category):
            return PageAnswer(PageKind.ALREADY, STATUS[PageKind.ALREADY], masked)
        return PageAnswer(PageKind.CONFIRM, STATUS[PageKind.CONFIRM], masked)

    def unsubscribe(self, token: str, via: str, now: datetime) -> PageAnswer:
        """POST: suppress the address for the token's category. The same answer every time:
        a replay (a second click, a provider retrying) records nothing new."""
        found = self._recipients.resolve(token, TokenPurpose.UNSUBSCRIBE, now)
        if isinstance(found, Refusal):
            return self._refused(found)
        decision = unsubscribe_decision(found.category, via)
        self._record(found, decision, now, f"feedback: unsubscribe ({via}, {found.category})")
        return PageAnswer(PageKind.DONE, STATUS[PageKind.DONE], mask_address(found.email))

    def _refused(self, refusal: Refusal) -> PageAnswer:
        metrics.REFUSED.labels("http", refusal.reason).inc()
        kind, status = refusal_page(refusal.reason)
        return PageAnswer(kind, status)

    # -- SMTP ------------------------------------------------------------------------------------

    def report(
        self, mail_from: str | None, rcpt_tos: Sequence[str], content: bytes, now: datetime
    ) -> ReportResult:
        """An inbound message: act on a DSN or ARF report naming one of our emails; keep
        anything else in the dead-letter store with the reason."""
        try:
            message = email.message_from_bytes(content, policy=policy.default)
            parsed = parse_report(message)
        except Exception as exc:  # the stdlib parser is lenient; this is its last resort
            parsed = Unreadable("parse_error", f"{type(exc).__name__}: {exc}"[:300])
        if isinstance(parsed, Unreadable):
            return self._dead_letter(
                parsed.reason, parsed.detail, mail_from, rcpt_tos, content, now
            )
        references = report_references(rcpt_tos, parsed, self._options.bounce_domain)
        found = self._recipients.first(references, now)
        if isinstance(found, Refusal):
            metrics.REFUSED.labels("smtp", found.reason).inc()
            detail = f"{len(references)} token(s) found, none usable"
            return self._dead_letter(found.reason, detail, mail_from, rcpt_tos, content, now)
        if isinstance(parsed, DeliveryReport):
            decision = delivery_decision(parsed)
            report_type = "delivery-status"
        else:
            assert isinstance(parsed, ComplaintReport)
            decision = complaint_decision(parsed)
            report_type = f"feedback-report:{parsed.feedback_type}"
        if decision is None:
            metrics.IGNORED_REPORTS.labels(report_type.split(":", 1)[0]).inc()
            log.info("report %s about %s asks for nothing", report_type, found.event_ref)
            return ReportResult.IGNORED
        if decision.kind is EventKind.POLICY_BOUNCE:
            metrics.POLICY_BOUNCES.labels(decision.detail.get("status", "?")).inc()
        soft = None
        if decision.kind is EventKind.SOFT_BOUNCE:
            window = self._options.soft_bounce_window
            soft = SoftBounceRule(now - window, self._options.soft_bounce_limit)
        source = f"feedback: {decision.kind.value} {decision.detail.get('status', '')}".strip()
        result = self._record(found, decision, now, source, soft)
        return ReportResult.REPLAY if result.recorded is Recorded.REPLAY else ReportResult.RECORDED

    def _dead_letter(
        self,
        reason: str,
        detail: str,
        mail_from: str | None,
        rcpt_tos: Sequence[str],
        content: bytes,
        now: datetime,
    ) -> ReportResult:
        self._dead_letters.keep(DeadLetter(now, reason, detail, mail_from, rcpt_tos, content))
        metrics.DEAD_LETTERS.labels(reason).inc()
        log.warning("inbound message kept as a dead letter: %s (%s)", reason, detail)
        return ReportResult.DEAD_LETTER

    # -- both --------------------------------------------------------------------------------------

    def _record(
        self,
        found: Recipient,
        decision: EventDecision,
        now: datetime,
        source: str,
        soft: SoftBounceRule | None = None,
    ) -> RecordResult:
        outcome = Outcome(
            status=decision.status,
            message_id=found.message_id,
            service=SERVICE,
            reason=decision.reason,
            campaign=found.campaign,
            profile_id=found.profile_id,
            idempotency_key=found.idempotency_key,
            at=now,
            detail=decision.detail,
        )
        event = NewEvent(
            found.event_ref, decision.kind, found.email, outcome, decision.suppress, source
        )
        result = self._store.record(event, now, soft)
        metrics.EVENTS.labels(decision.kind.value, result.recorded.value).inc()
        if result.recorded is Recorded.NEW:
            change = result.suppression
            if change is not None and change is not SuppressionChange.KEEP:
                reason = result.outcome.detail.get("suppression", "").split(":", 1)[0]
                metrics.SUPPRESSIONS.labels(reason, change.value).inc()
            # The commit above is what protects the recipient; the outcome follows at once,
            # and the maintenance loop sends it again if Kafka does not acknowledge it.
            self._publisher.publish((found.event_ref, decision.kind.value), result.outcome)
        return result
