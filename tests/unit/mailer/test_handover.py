"""What the end of an SMTP transaction means for its request, on values: one row per ending."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.common.models import OutcomeStatus
from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected
from services.mailer.rules.claim import DeliveryStatus
from services.mailer.rules.handover import Handover, Row, Transaction, handover_verdict
from services.mailer.rules.retry import RetryTopic
from tests.unit.mailer.helpers import NOW, request

RETRIES = (RetryTopic("emails.retry.30s", timedelta(seconds=30)),)
DEADLINE = NOW + timedelta(hours=1)
LATE = NOW + timedelta(seconds=10)  # a deadline before the first retry could run

NO_USER = SmtpRejected(
    "SMTP 550 at RCPT: 5.1.1 no such user", code=550, enhanced="5.1.1", stage="rcpt"
)
SPAM = SmtpRejected("SMTP 554 at DATA: 5.7.1 spam", code=554, enhanced="5.7.1", stage="data")
NO_CODE = SmtpRejected("SMTP 553 at RCPT: bad mailbox", code=553, enhanced=None, stage="rcpt")
BUSY = SmtpDeferred("SMTP 451 at RCPT: try later", code=451, stage="rcpt")
SERVER_DOWN = SmtpDeferred("refused", code=None, stage="connect", connection_level=True)
DROPPED = DeliveryUnknown("connection lost awaiting the reply to the message")


def named(step: Handover) -> str:
    """A handover as a row names it: the row written, what follows, the outcome or hold."""
    report = step.report
    if step.settle is not None:
        then = f"settle {step.settle.status.value}"
    elif report.hold is not None:
        then = f"hold ({report.hold.split(':')[0]})"
    elif report.retry is not None:
        then = f"retry {report.retry.topic}"
    else:
        assert report.outcome is not None
        then = f"{report.outcome.status.value}:{report.outcome.reason or ''}".rstrip(":")
    suppress = f" +suppress {step.suppress}" if step.suppress else ""
    dead = ", dead-lettered" if report.dead_letter else ""
    return f"{step.row.value}, {then}{dead}{suppress}"


BOUNCED = "failed:hard_bounce +suppress hard_bounce"
UNKNOWN = "unknown:smtp_unknown, dead-lettered"
GIVE_UP = "settle failed, dead-lettered"
ROWS = {
    "accepted": (None, 0, DEADLINE, "sent, sent"),
    "a bad mailbox": (NO_USER, 0, DEADLINE, f"failed, {BOUNCED}"),
    "a bad mailbox, no enhanced code": (NO_CODE, 0, DEADLINE, f"failed, {BOUNCED}"),
    "a content rejection": (SPAM, 0, DEADLINE, "failed, failed:smtp_rejected"),
    "dropped after the data": (DROPPED, 0, DEADLINE, f"unknown, {UNKNOWN}"),
    "a recipient deferral": (BUSY, 0, DEADLINE, "released, retry emails.retry.30s"),
    "a recipient deferral, retries spent": (BUSY, 1, DEADLINE, f"released, {GIVE_UP}"),
    "a recipient deferral past the deadline": (BUSY, 0, LATE, "released, settle expired"),
    "the server is down": (SERVER_DOWN, 0, DEADLINE, "released, hold (smtp)"),
    "the server is down, retries spent": (SERVER_DOWN, 1, DEADLINE, "released, hold (smtp)"),
}


@pytest.mark.parametrize(
    ("error", "attempt", "deadline", "expected"), ROWS.values(), ids=ROWS.keys()
)
def test_handover(
    error: SmtpDeferred | SmtpRejected | DeliveryUnknown | None,
    attempt: int,
    deadline: datetime,
    expected: str,
) -> None:
    ended = Transaction(error, "250 OK queued" if error is None else None, "<m@x>", 1, deadline)
    assert named(handover_verdict(request(attempt=attempt), ended, NOW, RETRIES)) == expected


def test_a_sent_message_reports_its_id_reply_and_attempts() -> None:
    ended = Transaction(None, "250 OK", "<m@x>", 2, DEADLINE)
    step = handover_verdict(request(), ended, NOW, RETRIES)
    assert step.row is Row.SENT and step.note == "<m@x>"
    outcome = step.report.outcome
    assert outcome is not None and outcome.status is OutcomeStatus.SENT and outcome.at == NOW
    assert outcome.detail == {"smtpMessageId": "<m@x>", "smtpReply": "250 OK", "attempts": "2"}


def test_a_rejection_reports_the_code_and_the_reply() -> None:
    step = handover_verdict(
        request(), Transaction(NO_USER, None, "<m@x>", 1, DEADLINE), NOW, RETRIES
    )
    assert step.row is Row.FAILED and step.note == str(NO_USER)
    assert step.report.outcome is not None
    assert step.report.outcome.detail == {"smtpCode": "550", "smtpReply": str(NO_USER)}
    assert step.report.dead_letter is None  # a 5xx is final, not a dead letter


def test_a_deferral_past_its_deadline_expires_whatever_the_row_says_now() -> None:
    step = handover_verdict(request(), Transaction(BUSY, None, "<m@x>", 1, LATE), NOW, RETRIES)
    assert step.row is Row.RELEASED and step.settle is not None
    assert step.settle.status is DeliveryStatus.EXPIRED and not step.settle.existing_wins


def test_a_server_level_deferral_holds_with_the_error() -> None:
    ended = Transaction(SERVER_DOWN, None, "<m@x>", 1, DEADLINE)
    step = handover_verdict(request(), ended, NOW, RETRIES)
    assert step.row is Row.RELEASED and step.settle is None
    assert step.report.hold == "smtp: refused" and step.report.error is SERVER_DOWN
