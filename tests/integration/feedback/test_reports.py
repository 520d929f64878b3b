"""Bounces (DSN) and complaints (ARF) sent over real SMTP to the feedback service's listener."""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest
import requests
from sqlalchemy import select

from services.common.db.tables import feedback_dead_letters
from services.common.models import OutcomeStatus
from tests.support.feedback_reports import arf, dsn, vacation_reply
from tests.support.feedback_service import BOUNCE_DOMAIN, SOFT_BOUNCE_LIMIT, FeedbackUnderTest


def _send(feedback: FeedbackUnderTest, rcpt: str, content: bytes, sender: str = "") -> None:
    """Deliver as an MTA does: null reverse path for a bounce, one RCPT, DATA."""
    with smtplib.SMTP("127.0.0.1", feedback.smtp_port, timeout=20) as client:
        client.ehlo("mx.example.net")
        client.sendmail(sender, [rcpt], content)


def test_a_hard_bounce_suppresses_the_address_the_email_went_to(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("gone")
    sent = feedback.sent(email)

    _send(
        feedback, sent.return_path, dsn(to=sent.return_path, status="5.1.1", final_recipient=email)
    )

    feedback.assert_hard_bounced(email, sent)


def test_a_complaint_to_the_feedback_loop_mailbox_suppresses_and_widens(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    """The provider writes to the loop mailbox; the report quotes our return path. An earlier
    unsubscribe (marketing only) is widened to a complaint (everything)."""
    email = address("complainer")
    sent = feedback.sent(email)
    unsubscribed = requests.post(
        feedback.unsubscribe_url(sent.unsubscribe_token),
        data={"List-Unsubscribe": "One-Click"},
        timeout=10,
    )
    assert unsubscribed.status_code == 200

    report = arf(
        to=f"fbl@{BOUNCE_DOMAIN}",
        original_mail_from=sent.return_path,
        original_rcpt_to=None,  # many providers redact it
        return_path=sent.return_path,
    )
    _send(feedback, f"fbl@{BOUNCE_DOMAIN}", report, sender="abusedesk@mail.example.org")

    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "complaint"
    outcomes = feedback.outcomes_for(sent.ref.profile_id, 2)
    assert [o.status for _, o in outcomes] == [
        OutcomeStatus.UNSUBSCRIBED,
        OutcomeStatus.COMPLAINED,
    ]
    assert outcomes[1][1].detail["suppression"] == "complaint:widen"


def test_soft_bounces_count_once_per_email_and_suppress_at_the_limit(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("full-mailbox")
    emails = [feedback.sent(email) for _ in range(SOFT_BOUNCE_LIMIT)]
    first = emails[0]
    delayed = dsn(to=first.return_path, action="delayed", status="4.2.2", final_recipient=email)

    _send(feedback, first.return_path, delayed)
    _send(feedback, first.return_path, delayed)  # a second warning about the same email
    assert feedback.suppression(email) is None

    last = emails[-1]
    _send(
        feedback,
        last.return_path,
        dsn(to=last.return_path, action="failed", status="4.4.7", final_recipient=email),
    )
    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "hard_bounce"
    assert [len(feedback.events(sent.ref.ref)) for sent in emails] == [1] * SOFT_BOUNCE_LIMIT


def test_a_policy_bounce_never_suppresses(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("policy")
    sent = feedback.sent(email)
    _send(feedback, sent.return_path, dsn(to=sent.return_path, status="5.7.26"))
    assert feedback.suppression(email) is None
    ((_, outcome),) = feedback.outcomes_for(sent.ref.profile_id, 1)
    assert outcome.label == "bounced:policy"


@pytest.mark.parametrize(
    "rcpt",
    [
        f"bounce+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@{BOUNCE_DOMAIN}",  # forged
        f"bounce+not-a-token@{BOUNCE_DOMAIN}",
        f"postmaster@{BOUNCE_DOMAIN}",
        "someone@elsewhere.example",
    ],
)
def test_strangers_are_refused_at_rcpt(feedback: FeedbackUnderTest, rcpt: str) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(feedback, rcpt, dsn(to=rcpt))
    ((code, _),) = refused.value.recipients.values()
    assert code == 550


def test_unreadable_mail_is_kept_as_a_dead_letter_with_its_reason(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("on-holiday")
    sent = feedback.sent(email)
    content = vacation_reply(to=sent.return_path)

    _send(feedback, sent.return_path, content, sender=email)

    assert feedback.suppression(email) is None
    with feedback.engine.connect() as conn:
        rows = conn.execute(
            select(feedback_dead_letters).where(feedback_dead_letters.c.mail_from == email)
        ).all()
    ((row),) = rows
    assert row.reason == "not_a_report" and row.rcpt_to == sent.return_path
    assert row.content == content and row.size == len(content)
