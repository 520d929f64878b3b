"""What each thing a recipient does becomes: an event kind, an outcome, maybe a suppression."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from services.common.models import OutcomeStatus
from services.common.suppression import COMPLAINT, HARD_BOUNCE, UNSUBSCRIBED
from services.feedback.rules.bounces import BounceKind, classify_status, worst
from services.feedback.rules.reports import ComplaintReport, DeliveryReport, RecipientStatus

# ARF feedback types that mean "this recipient does not want our mail". `not-spam` is the
# opposite, `virus` is about content, `auth-failure` (RFC 6591) about our authentication.
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "other"})
# DSN actions that report a failure; `delivered`, `relayed` and `expanded` are successes.
FAILURE_ACTIONS = frozenset({"failed", "delayed"})


class EventKind(enum.StrEnum):
    """One kind of event per sent email: a repeat of the same kind changes nothing."""

    UNSUBSCRIBE = "unsubscribe"
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    POLICY_BOUNCE = "policy_bounce"
    COMPLAINT = "complaint"


@dataclass(frozen=True)
class EventDecision:
    """The event to record, its outcome, and the suppression it writes at once (if any).

    A soft bounce suppresses nothing by itself; the count of soft bounces decides
    (`rules.bounces.soft_bounce_limit_reached`).
    """

    kind: EventKind
    status: OutcomeStatus
    reason: str
    suppress: str | None
    detail: dict[str, str] = field(default_factory=dict)


def unsubscribe_decision(category: str, via: str) -> EventDecision:
    """A verified unsubscribe: suppressed as `unsubscribed` (marketing mail only)."""
    return EventDecision(
        EventKind.UNSUBSCRIBE,
        OutcomeStatus.UNSUBSCRIBED,
        category,
        UNSUBSCRIBED,
        {"scope": category, "via": via},
    )


def delivery_decision(report: DeliveryReport) -> EventDecision | None:
    """The event a DSN makes, from its most severe failed or delayed recipient; None when it
    reports no failure (a success notification)."""
    failures = [r for r in report.recipients if r.action in FAILURE_ACTIONS or not r.action]
    kinds = [classify_status(r.status) for r in failures]
    kind = worst(kinds)
    if kind is BounceKind.NONE:
        return None
    chosen = next(r for r, k in zip(failures, kinds, strict=True) if k is kind)
    detail = _status_detail(chosen)
    if kind is BounceKind.HARD:
        return EventDecision(
            EventKind.HARD_BOUNCE, OutcomeStatus.BOUNCED, kind.value, HARD_BOUNCE, detail
        )
    if kind is BounceKind.SOFT:
        return EventDecision(EventKind.SOFT_BOUNCE, OutcomeStatus.BOUNCED, kind.value, None, detail)
    return EventDecision(EventKind.POLICY_BOUNCE, OutcomeStatus.BOUNCED, kind.value, None, detail)


def complaint_decision(report: ComplaintReport) -> EventDecision | None:
    """A complaint suppresses the address for every campaign; other feedback types do not."""
    if report.feedback_type not in COMPLAINT_TYPES:
        return None
    return EventDecision(
        EventKind.COMPLAINT,
        OutcomeStatus.COMPLAINED,
        report.feedback_type,
        COMPLAINT,
        {"feedbackType": report.feedback_type},
    )


def _status_detail(status: RecipientStatus) -> dict[str, str]:
    detail = {"status": status.status, "action": status.action or "unknown"}
    if status.diagnostic:
        detail["diagnostic"] = status.diagnostic[:300]
    return detail
