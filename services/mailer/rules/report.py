"""What the loop publishes for one email request (`Report`), and the reports several paths share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.models import EmailRequest, Outcome, OutcomeStatus
from services.mailer.errors import DeliveryUnknown
from services.mailer.rules.claim import Claim, DeliveryStatus
from services.mailer.rules.retry import Retry, RetryTopic, defer_topic

SERVICE = "mailer"


@dataclass(frozen=True)
class Report:
    """What to publish for one request; `hold` means: not handled, read it again later."""

    outcome: Outcome | None = None
    retry: Retry | None = None
    dead_letter: str | None = None
    error: BaseException | None = None
    hold: str | None = None


def outcome_for(
    request: EmailRequest,
    status: OutcomeStatus,
    at: datetime,
    reason: str | None = None,
    detail: dict[str, str] | None = None,
) -> Outcome:
    """The request's outcome, recorded by the mailer at `at`."""
    return Outcome(
        status,
        request.message_id,
        SERVICE,
        reason,
        request.trigger_id,
        request.campaign,
        request.profile_id,
        request.idempotency_key,
        at,
        detail or {},
    )


def internal_error(request: EmailRequest, error: BaseException, at: datetime) -> Report:
    """The report of a request whose handling hit a bug: failed, and dead-lettered."""
    failed = outcome_for(request, OutcomeStatus.FAILED, at, "internal_error")
    return Report(outcome=failed, dead_letter="internal_error", error=error)


def defer(request: EmailRequest, not_before: datetime, retries: Sequence[RetryTopic]) -> Report:
    """Wait in the first delay topic without spending an attempt."""
    return Report(retry=Retry(defer_topic(retries).name, not_before, request.attempt))


# What an earlier final status is reported as, when the key comes round again.
_REPEATED = {
    DeliveryStatus.SENT: OutcomeStatus.SENT,
    DeliveryStatus.EXPIRED: OutcomeStatus.EXPIRED,
    DeliveryStatus.IGNORED: OutcomeStatus.SUPPRESSED,
    DeliveryStatus.UNKNOWN: OutcomeStatus.UNKNOWN,
    DeliveryStatus.HANDING: OutcomeStatus.UNKNOWN,  # another instance is handing it over
}


def already(request: EmailRequest, claim: Claim, at: datetime) -> Report:
    """The key was settled before (redelivery after a crash, replay): report, never resend.

    The outcome repeats the recorded one, so whoever missed it (a crash before the outcome
    was published) still gets it; readers of `outcomes` keep one per idempotency key. An
    `unknown` key is dead-lettered again on every report (`smtp_unknown`), so an outcome lost
    with a crash (the row saved, the broker down, the mailer killed) never hides it from the
    operator, who may resend it (`triggerline replay redrive --resend-unknown`); its first
    report after a holder went silent mid-handover says so (`holder_lost`).
    """
    detail = {"redelivered": "true"}
    if claim.smtp_message_id:
        detail["smtpMessageId"] = claim.smtp_message_id
    status = _REPEATED.get(claim.status, OutcomeStatus.FAILED)
    if claim.status is DeliveryStatus.UNKNOWN:
        why = "holder_lost" if claim.abandoned else "already_unknown"
        unknown = outcome_for(request, status, at, why, detail)
        error = DeliveryUnknown(
            "the message may have been delivered (the connection was lost after its data, or "
            "the mailer handing it over went silent); never resent without an operator"
        )
        return Report(outcome=unknown, dead_letter="smtp_unknown", error=error)
    reason = None if status is OutcomeStatus.SENT else f"already_{claim.status.value}"
    return Report(outcome=outcome_for(request, status, at, reason, detail))
