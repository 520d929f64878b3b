"""What the end of one SMTP transaction means for its claimed request: `handover_verdict`."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.models import EmailRequest, OutcomeStatus
from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected
from services.mailer.rules.report import Report, outcome_for
from services.mailer.rules.retry import RetryTopic
from services.mailer.rules.suppression import bounce_suppression
from services.mailer.rules.verdict import Publish, Settle, retry_route


class Row(enum.Enum):
    """What becomes of the key's claimed row."""

    SENT = "sent"  # the server took the message; the row is saved with others
    FAILED = "failed"  # a 5xx: final, never retried
    UNKNOWN = "unknown"  # dropped after the data: it may have arrived, so it is never resent
    RELEASED = "released"  # nothing was sent: the claim is given back for a later attempt


@dataclass(frozen=True)
class Handover:
    """The row to write, then the report; a released row may be settled at once (`settle`)."""

    row: Row
    note: str  # the Message-ID of a sent message, else the error the row keeps
    report: Report
    suppress: str | None = None  # a recipient-level rejection suppresses the address
    settle: Settle | None = None  # then this, and its report instead (`Rows.settle`)


@dataclass(frozen=True)
class Transaction:
    """How the SMTP transaction of a claimed request ended, and what it carried."""

    error: SmtpDeferred | SmtpRejected | DeliveryUnknown | None
    reply: str | None  # the server's final reply text when it took the message
    message_id: str  # the message's Message-ID
    attempts: int  # the claim's attempt count
    deadline: datetime


def handover_verdict(
    request: EmailRequest,
    transaction: Transaction,
    now: datetime,
    retries: Sequence[RetryTopic],
) -> Handover:
    """Taken, rejected, unknown, or deferred; `now` is the wall clock at the transaction's end.

    A deferral of the server rather than the recipient (421, 4.7.x, connection failures) holds
    the whole poll, so the pool backs off; any other deferral goes to the next delay topic.
    """
    error = transaction.error
    if isinstance(error, SmtpRejected):
        suppress = bounce_suppression(error.code or 500, error.enhanced, error.stage)
        detail = {"smtpCode": str(error.code), "smtpReply": str(error)[:300]}
        reason = suppress or "smtp_rejected"
        failed = outcome_for(request, OutcomeStatus.FAILED, now, reason, detail)
        return Handover(Row.FAILED, str(error), Report(failed), suppress=suppress)
    if isinstance(error, DeliveryUnknown):
        unknown = outcome_for(request, OutcomeStatus.UNKNOWN, now, "smtp_unknown")
        report = Report(unknown, dead_letter="smtp_unknown", error=error)
        return Handover(Row.UNKNOWN, str(error), report)
    if isinstance(error, SmtpDeferred):
        if error.connection_level:
            held = Report(hold=f"smtp: {error}", error=error)
            return Handover(Row.RELEASED, str(error), held)
        then = retry_route(request, error, transaction.deadline, now, retries)
        if isinstance(then, Publish):
            return Handover(Row.RELEASED, str(error), then.report)
        return Handover(Row.RELEASED, str(error), then.report, settle=then)
    detail = {
        "smtpMessageId": transaction.message_id,
        "smtpReply": transaction.reply or "",
        "attempts": str(transaction.attempts),
    }
    sent = outcome_for(request, OutcomeStatus.SENT, now, detail=detail)
    return Handover(Row.SENT, transaction.message_id, Report(sent))
