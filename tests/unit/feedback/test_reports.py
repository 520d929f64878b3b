"""DSN and ARF parsing, and where a report names the email it is about."""

from __future__ import annotations

import email
from email import policy

import pytest

from services.common.unsubscribe_token import TokenPurpose
from services.feedback.rules.references import Reference, report_references
from services.feedback.rules.reports import (
    ComplaintReport,
    DeliveryReport,
    OriginalHeaders,
    RecipientStatus,
    Unreadable,
    parse_report,
)
from tests.support.feedback_reports import DEFAULT_DOMAIN, arf, dsn, vacation_reply

VERP = f"bounce+tok1@{DEFAULT_DOMAIN}"
LINK = "https://feedback.example.com/unsubscribe?token=tok2"


def _parse(content: bytes) -> DeliveryReport | ComplaintReport | Unreadable:
    return parse_report(email.message_from_bytes(content, policy=policy.default))


@pytest.mark.parametrize("original", ["headers", "message"])
def test_a_postfix_hard_bounce(original: str) -> None:
    report = _parse(dsn(to=VERP, status="5.1.1", list_unsubscribe=LINK, original=original))
    assert isinstance(report, DeliveryReport)
    (recipient,) = report.recipients
    assert recipient == RecipientStatus(
        action="failed",
        status="5.1.1",
        final_recipient="maria@example.org",
        diagnostic="smtp; 550 5.1.1 <maria@example.org>: Recipient address rejected",
    )
    assert report.original == OriginalHeaders(
        return_path=f"<{VERP}>", list_unsubscribe=f"<{LINK}>", message_id="<0f3c9a@example.com>"
    )


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([("delayed", "4.2.2")], [("delayed", "4.2.2")]),
        ([("failed", "5.7.1 (policy)")], [("failed", "5.7.1")]),
        ([("delivered", "2.0.0")], [("delivered", "2.0.0")]),
        ([("failed", "5.1.1"), ("delayed", "4.4.1")], [("failed", "5.1.1"), ("delayed", "4.4.1")]),
        ([("failed", "bogus"), ("failed", "5.2.2")], [("failed", "5.2.2")]),
    ],
)
def test_delivery_status_blocks(
    blocks: list[tuple[str, str]], expected: list[tuple[str, str]]
) -> None:
    report = _parse(dsn(to=VERP, recipients=blocks))
    assert isinstance(report, DeliveryReport)
    assert [(r.action, r.status) for r in report.recipients] == expected


def test_an_arf_complaint() -> None:
    report = _parse(arf(original_mail_from=VERP, return_path=VERP, list_unsubscribe=LINK))
    assert report == ComplaintReport(
        feedback_type="abuse",
        original_mail_from=VERP,
        original_rcpt_to=("maria@example.org",),
        original=OriginalHeaders(
            return_path=f"<{VERP}>",
            list_unsubscribe=f"<{LINK}>",
            message_id="<0f3c9a@example.com>",
        ),
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (vacation_reply(to=VERP), "not_a_report"),
        (dsn(to=VERP, recipients=[("failed", "bogus")]), "no_status"),
        (dsn(to=VERP, status_as_text=True), "no_delivery_status"),
        (arf(feedback_type=""), "no_feedback_type"),
        (
            dsn(to=VERP).replace(b"report-type=delivery-status", b"report-type=disposition"),
            "unknown_report_type",
        ),
        (b"\x00\xff garbage without headers", "not_a_report"),
    ],
)
def test_what_is_no_usable_report(content: bytes, reason: str) -> None:
    result = _parse(content)
    assert isinstance(result, Unreadable) and result.reason == reason


def test_references_come_best_first_and_once() -> None:
    report = _parse(dsn(to=VERP, list_unsubscribe=LINK))
    assert isinstance(report, DeliveryReport)
    assert report_references([VERP], report, DEFAULT_DOMAIN) == (
        Reference(TokenPurpose.BOUNCE, "tok1"),
        Reference(TokenPurpose.UNSUBSCRIBE, "tok2"),
    )


def test_a_complaint_to_the_loop_mailbox_is_traced_through_the_report() -> None:
    other = f"bounce+tok3@{DEFAULT_DOMAIN}"
    report = _parse(arf(original_mail_from=other, return_path=VERP))
    assert isinstance(report, ComplaintReport)
    refs = report_references([f"fbl@{DEFAULT_DOMAIN}"], report, DEFAULT_DOMAIN)
    assert refs == (
        Reference(TokenPurpose.BOUNCE, "tok3"),
        Reference(TokenPurpose.BOUNCE, "tok1"),
    )


def test_addresses_of_other_domains_are_no_reference() -> None:
    report = _parse(arf(original_mail_from="bounce+tok3@elsewhere.example", return_path=None))
    assert isinstance(report, ComplaintReport)
    assert report_references([], report, DEFAULT_DOMAIN) == ()
