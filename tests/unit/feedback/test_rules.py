"""The feedback service's decisions: bounce kinds, the soft-bounce count, suppression changes,
events, and the suppression scope every service applies."""

from __future__ import annotations

import pytest

from services.common.models import OutcomeStatus
from services.common.suppression import (
    SuppressionChange,
    applies_to,
    suppression_change,
    suppression_key,
)
from services.feedback.rules.bounces import (
    BounceKind,
    classify_status,
    soft_bounce_limit_reached,
    worst,
)
from services.feedback.rules.events import (
    EventKind,
    complaint_decision,
    delivery_decision,
    unsubscribe_decision,
)
from services.feedback.rules.reports import (
    ComplaintReport,
    DeliveryReport,
    OriginalHeaders,
    RecipientStatus,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("5.1.1", BounceKind.HARD),  # bad mailbox
        ("5.1.10", BounceKind.HARD),  # null MX
        ("5.2.1", BounceKind.HARD),  # mailbox disabled
        ("5.2.2", BounceKind.HARD),  # mailbox full, permanently
        ("5.4.4", BounceKind.HARD),  # unable to route: the domain has no mail server
        ("5.0.0", BounceKind.HARD),  # "other": many servers say user unknown this way
        ("5.7.1", BounceKind.POLICY),  # refused us: never the address's fault
        ("5.7.26", BounceKind.POLICY),  # DMARC/DKIM failure
        ("5.6.0", BounceKind.POLICY),  # content
        ("5.5.2", BounceKind.POLICY),  # protocol
        ("4.2.2", BounceKind.SOFT),  # mailbox full, for now
        ("4.4.1", BounceKind.SOFT),  # no answer from host
        ("4.7.0", BounceKind.POLICY),  # greylisting or rate limits: our sending, not them
        ("2.0.0", BounceKind.NONE),
        ("9.9.9", BounceKind.NONE),
        ("", BounceKind.NONE),
        ("5.1.1 (bad destination mailbox address)", BounceKind.HARD),
    ],
)
def test_classify_status(status: str, kind: BounceKind) -> None:
    assert classify_status(status) is kind


@pytest.mark.parametrize(
    ("kinds", "expected"),
    [
        ([], BounceKind.NONE),
        ([BounceKind.SOFT, BounceKind.HARD], BounceKind.HARD),
        ([BounceKind.POLICY, BounceKind.SOFT], BounceKind.SOFT),
        ([BounceKind.NONE, BounceKind.POLICY], BounceKind.POLICY),
    ],
)
def test_worst(kinds: list[BounceKind], expected: BounceKind) -> None:
    assert worst(kinds) is expected


@pytest.mark.parametrize(
    ("count", "limit", "suppress"),
    [(1, 3, False), (2, 3, False), (3, 3, True), (4, 3, True), (1, 1, True)],
)
def test_soft_bounce_limit(count: int, limit: int, suppress: bool) -> None:
    assert soft_bounce_limit_reached(count, limit) is suppress


@pytest.mark.parametrize(
    ("existing", "wanted", "change"),
    [
        (None, "unsubscribed", SuppressionChange.INSERT),
        (None, "hard_bounce", SuppressionChange.INSERT),
        ("unsubscribed", "unsubscribed", SuppressionChange.KEEP),  # a replay
        ("unsubscribed", "hard_bounce", SuppressionChange.WIDEN),
        ("unsubscribed", "complaint", SuppressionChange.WIDEN),
        ("hard_bounce", "unsubscribed", SuppressionChange.KEEP),  # never narrowed
        ("complaint", "hard_bounce", SuppressionChange.KEEP),  # first reason wins
        ("manual", "complaint", SuppressionChange.KEEP),
    ],
)
def test_suppression_change(existing: str | None, wanted: str, change: SuppressionChange) -> None:
    assert suppression_change(existing, wanted) is change


@pytest.mark.parametrize(
    ("reason", "category", "stops"),
    [
        ("unsubscribed", "marketing", True),
        ("unsubscribed", "transactional", False),
        ("hard_bounce", "transactional", True),
        ("complaint", "marketing", True),
        ("manual", "transactional", True),
    ],
)
def test_what_a_suppression_stops(reason: str, category: str, stops: bool) -> None:
    assert applies_to(reason, category) is stops


def test_the_suppression_key() -> None:
    assert suppression_key("  Maria.Lopez@Example.ORG \n") == "maria.lopez@example.org"


def _dsn(*blocks: tuple[str, str]) -> DeliveryReport:
    return DeliveryReport(
        tuple(RecipientStatus(action, status) for action, status in blocks), OriginalHeaders()
    )


@pytest.mark.parametrize(
    ("blocks", "kind", "suppress"),
    [
        ([("failed", "5.1.1")], EventKind.HARD_BOUNCE, "hard_bounce"),
        ([("delayed", "4.2.2")], EventKind.SOFT_BOUNCE, None),
        ([("failed", "4.4.7")], EventKind.SOFT_BOUNCE, None),  # gave up on a transient error
        ([("failed", "5.7.1")], EventKind.POLICY_BOUNCE, None),
        ([("delayed", "4.2.2"), ("failed", "5.1.1")], EventKind.HARD_BOUNCE, "hard_bounce"),
        ([("delivered", "2.0.0")], None, None),
        ([("relayed", "5.1.1")], None, None),  # a success action says more than its code
    ],
)
def test_delivery_decision(
    blocks: list[tuple[str, str]], kind: EventKind | None, suppress: str | None
) -> None:
    decision = delivery_decision(_dsn(*blocks))
    if kind is None:
        assert decision is None
        return
    assert decision is not None
    assert (decision.kind, decision.suppress, decision.status) == (
        kind,
        suppress,
        OutcomeStatus.BOUNCED,
    )
    assert decision.reason in ("hard", "soft", "policy")
    assert decision.detail["status"]


@pytest.mark.parametrize(
    ("feedback_type", "complaint"),
    [("abuse", True), ("fraud", True), ("other", True), ("not-spam", False), ("virus", False)],
)
def test_complaint_decision(feedback_type: str, complaint: bool) -> None:
    decision = complaint_decision(ComplaintReport(feedback_type, None, (), OriginalHeaders()))
    if not complaint:
        assert decision is None
        return
    assert decision is not None
    assert (decision.kind, decision.status, decision.suppress) == (
        EventKind.COMPLAINT,
        OutcomeStatus.COMPLAINED,
        "complaint",
    )


def test_unsubscribe_decision() -> None:
    decision = unsubscribe_decision("marketing", "one-click")
    assert (decision.kind, decision.status, decision.reason, decision.suppress) == (
        EventKind.UNSUBSCRIBE,
        OutcomeStatus.UNSUBSCRIBED,
        "marketing",
        "unsubscribed",
    )
    assert decision.detail == {"scope": "marketing", "via": "one-click"}


def test_recipient_events_stay_out_of_the_trigger_balance() -> None:
    events = {s for s in OutcomeStatus if s.is_recipient_event}
    assert events == {OutcomeStatus.UNSUBSCRIBED, OutcomeStatus.BOUNCED, OutcomeStatus.COMPLAINED}
