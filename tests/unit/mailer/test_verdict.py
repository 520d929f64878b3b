"""A request's verdict before SMTP, on values: every step and the order of the checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.common.campaign_config import Campaign
from services.common.errors import InvalidInput
from services.common.models import OutcomeStatus
from services.mailer.errors import DeliveryUnknown
from services.mailer.rules.claim import Claim, ClaimState, DeliveryStatus
from services.mailer.rules.report import already, internal_error
from services.mailer.rules.retry import Retry, RetryTopic
from services.mailer.rules.verdict import (
    UNASKED,
    Need,
    Publish,
    Send,
    Settle,
    Unasked,
    Verdict,
    refused,
    verdict,
)
from tests.unit.mailer.helpers import NOW, request

RETRIES = (
    RetryTopic("emails.retry.30s", timedelta(seconds=30)),
    RetryTopic("emails.retry.5m", timedelta(minutes=5)),
)
CART = Campaign.model_validate({"template": "cart_abandonment", "validity": "2h"})
RECEIPT = Campaign.model_validate(
    {"template": "cart_abandonment", "validity": "2h", "category": "transactional"}
)
PENDING = DeliveryStatus.PENDING
CLAIMED = Claim(ClaimState.CLAIMED, PENDING, 2)
BUSY_LONG = Claim(ClaimState.BUSY, PENDING, 1, held_until=NOW + timedelta(hours=1))
BUSY_SHORT = Claim(ClaimState.BUSY, PENDING, 1, held_until=NOW + timedelta(seconds=5))
SENT_BEFORE = Claim(ClaimState.SETTLED, DeliveryStatus.SENT, 1, "<k@x>")
FAILED_BEFORE = Claim(ClaimState.SETTLED, DeliveryStatus.FAILED, 3)
STALE = {"trigger_timestamp": NOW - timedelta(hours=3)}
EARLY = {"not_before": NOW + timedelta(minutes=10)}
SOON = {"expires_at": NOW + timedelta(seconds=10)}  # sooner than the first retry
DEADLINE = NOW + timedelta(hours=2)  # the helper's trigger time plus CART's validity


def named(step: Verdict) -> str:
    """A verdict as a row names it: `need suppression`, `send`, `settle expired`, `publish ...`."""
    if isinstance(step, Need):
        return f"need {step.value}"
    if isinstance(step, Send):
        return "send"
    if isinstance(step, Settle):
        outcome = step.report.outcome
        assert outcome is not None
        return f"settle {step.status.value} -> {outcome.status.value}:{outcome.reason}"
    report = step.report
    if report.retry is not None:
        return f"publish retry {report.retry.topic} attempt {report.retry.attempt}"
    assert report.outcome is not None
    return f"publish {report.outcome.status.value}:{report.outcome.reason or ''}".rstrip(":")


RETRY = "publish retry emails.retry.30s attempt 1"
WAIT = "publish retry emails.retry.30s attempt 0"  # a deferral spends no attempt
EXPIRE = "settle expired -> expired:validity"
GIVE_UP = "settle failed -> failed:unknown_campaign"
SUPPRESS = "settle ignored -> suppressed:hard_bounce"
Row = tuple[dict[str, Any], Campaign | None, str | None | Unasked, Claim | Unasked, str]
ROWS: dict[str, Row] = {
    "unknown campaign: retry": ({}, None, UNASKED, UNASKED, RETRY),
    "unknown campaign, retries spent": ({"attempt": 2}, None, UNASKED, UNASKED, GIVE_UP),
    "unknown campaign, expiring first": (SOON, None, UNASKED, UNASKED, EXPIRE),
    "expired": (STALE, CART, UNASKED, UNASKED, EXPIRE),
    "expired by its own expiresAt": ({"expires_at": NOW}, CART, UNASKED, UNASKED, EXPIRE),
    "not due yet": (EARLY, CART, UNASKED, UNASKED, WAIT),
    "due": ({"not_before": NOW}, CART, UNASKED, UNASKED, "need suppression"),
    "suppression not read yet": ({}, CART, UNASKED, UNASKED, "need suppression"),
    "suppressed": ({}, CART, "unsubscribed", UNASKED, "settle ignored -> suppressed:unsubscribed"),
    "not claimed yet": ({}, CART, None, UNASKED, "need claim"),
    # an unsubscribe is from marketing mail; a bounce says the address itself is bad
    "unsubscribed, transactional": ({}, RECEIPT, "unsubscribed", UNASKED, "need claim"),
    "hard bounce, transactional": ({}, RECEIPT, "hard_bounce", UNASKED, SUPPRESS),
    "held by another instance": ({}, CART, None, BUSY_LONG, WAIT),
    "held, soon stale": ({}, CART, None, BUSY_SHORT, WAIT),
    "sent before": ({}, CART, None, SENT_BEFORE, "publish sent"),
    "failed before": ({}, CART, None, FAILED_BEFORE, "publish failed:already_failed"),
    "claimed": ({}, CART, None, CLAIMED, "send"),
    # the order: where two checks say no, the earlier one decides
    "unknown campaign before validity": (STALE, None, UNASKED, UNASKED, RETRY),
    "validity before notBefore": ({**STALE, **EARLY}, CART, UNASKED, UNASKED, EXPIRE),
    "notBefore before suppression": (EARLY, CART, "hard_bounce", UNASKED, WAIT),
    "suppression before the claim": ({}, CART, "hard_bounce", SENT_BEFORE, SUPPRESS),
    "validity before a settled claim": (STALE, CART, None, SENT_BEFORE, EXPIRE),
}


@pytest.mark.parametrize(
    ("overrides", "campaign", "suppression", "claim", "expected"), ROWS.values(), ids=ROWS.keys()
)
def test_verdict(
    overrides: dict[str, Any],
    campaign: Campaign | None,
    suppression: str | None | Unasked,
    claim: Claim | Unasked,
    expected: str,
) -> None:
    step = verdict(request(**overrides), campaign, suppression, claim, NOW, RETRIES)
    assert named(step) == expected


def test_a_claim_is_sent_with_its_deadline_and_attempts() -> None:
    assert verdict(request(), CART, None, CLAIMED, NOW, RETRIES) == Send(DEADLINE, 2)


def test_deferrals_wait_until_due_or_until_the_claim_could_go_stale() -> None:
    def retry_of(step: Verdict) -> Retry:
        assert isinstance(step, Publish) and step.report.retry is not None
        return step.report.retry

    early = request(**EARLY)
    assert (
        retry_of(verdict(early, CART, UNASKED, UNASKED, NOW, RETRIES)).not_before
        == EARLY["not_before"]
    )
    long = retry_of(verdict(request(), CART, None, BUSY_LONG, NOW, RETRIES))
    assert long.not_before == NOW + timedelta(seconds=30)  # the first delay topic's wait
    short = retry_of(verdict(request(), CART, None, BUSY_SHORT, NOW, RETRIES))
    assert short.not_before == NOW + timedelta(seconds=5)


def test_settling_records_why_and_an_earlier_status_wins_except_for_a_late_retry() -> None:
    expired = verdict(request(**STALE), CART, UNASKED, UNASKED, NOW, RETRIES)
    assert isinstance(expired, Settle) and expired.existing_wins
    assert expired.why == f"validity ended {NOW - timedelta(hours=1)}"
    late = verdict(
        request(expires_at=NOW + timedelta(seconds=10)), None, UNASKED, UNASKED, NOW, RETRIES
    )
    assert isinstance(late, Settle) and not late.existing_wins
    spent = verdict(request(attempt=2), None, UNASKED, UNASKED, NOW, RETRIES)
    assert isinstance(spent, Settle) and spent.report.dead_letter == "unknown_campaign"
    assert spent.why == "unknown_campaign: campaign 'cart_abandonment' is not configured"


def test_a_message_that_cannot_be_built_is_refused_and_dead_lettered() -> None:
    error = InvalidInput("template_error", "undefined name 'x'")
    step = refused(request(), error, NOW)
    assert step.status is DeliveryStatus.FAILED and step.why == str(error)
    assert step.report.dead_letter == "template_error" and step.report.error is error
    assert step.report.outcome is not None and step.report.outcome.reason == "template_error"


@pytest.mark.parametrize(
    ("status", "outcome", "reason"),
    [
        (DeliveryStatus.SENT, OutcomeStatus.SENT, None),
        (DeliveryStatus.EXPIRED, OutcomeStatus.EXPIRED, "already_expired"),
        (DeliveryStatus.IGNORED, OutcomeStatus.SUPPRESSED, "already_ignored"),
        (DeliveryStatus.UNKNOWN, OutcomeStatus.UNKNOWN, "already_unknown"),
        (DeliveryStatus.FAILED, OutcomeStatus.FAILED, "already_failed"),
    ],
)
def test_an_earlier_status_is_repeated_never_resent(
    status: DeliveryStatus, outcome: OutcomeStatus, reason: str | None
) -> None:
    repeated = already(request(), Claim(ClaimState.SETTLED, status, 1, "<k@x>"), NOW).outcome
    assert repeated is not None
    assert (repeated.status, repeated.reason) == (outcome, reason)
    assert repeated.detail == {"redelivered": "true", "smtpMessageId": "<k@x>"}
    assert repeated.idempotency_key == "key-1" and repeated.at == NOW


@pytest.mark.parametrize(
    ("abandoned", "reason"), [(True, "holder_lost"), (False, "already_unknown")]
)
def test_every_report_of_an_unknown_key_is_dead_lettered(abandoned: bool, reason: str) -> None:
    """So an outcome lost with a crash never hides an unknown delivery from the operator."""
    claim = Claim(ClaimState.SETTLED, DeliveryStatus.UNKNOWN, 1, abandoned=abandoned)
    report = already(request(), claim, NOW)
    assert report.outcome is not None
    assert (report.outcome.status, report.outcome.reason) == (OutcomeStatus.UNKNOWN, reason)
    assert report.dead_letter == "smtp_unknown" and isinstance(report.error, DeliveryUnknown)


def test_other_repeated_statuses_are_not_dead_lettered() -> None:
    for status in (DeliveryStatus.SENT, DeliveryStatus.EXPIRED, DeliveryStatus.FAILED):
        assert already(request(), Claim(ClaimState.SETTLED, status, 1), NOW).dead_letter is None


def test_a_bug_fails_the_request_and_dead_letters_it() -> None:
    error = KeyError("x")
    report = internal_error(request(), error, NOW)
    assert report.dead_letter == "internal_error" and report.error is error
    assert report.outcome is not None and report.outcome.label == "failed"
