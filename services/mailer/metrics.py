"""Prometheus metrics of the mailer, served on /metrics by the common health server."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.common.models import EmailRequest, OutcomeStatus
from services.mailer.rules.report import Report

SENT = Counter("triggerline_mailer_sent", "Emails the SMTP server accepted.", ["campaign"])
FAILED = Counter(
    "triggerline_mailer_failed", "Requests that ended failed, by reason.", ["campaign", "reason"]
)
RETRIED = Counter(
    "triggerline_mailer_retried", "Requests sent to a retry topic.", ["campaign", "topic"]
)
SUPPRESSED = Counter(
    "triggerline_mailer_suppressed",
    "Requests not sent because the address is suppressed, or newly suppressed after a bounce.",
    ["campaign", "reason"],
)
EXPIRED = Counter("triggerline_mailer_expired", "Requests past their validity.", ["campaign"])
DEAD_LETTERED = Counter(
    "triggerline_mailer_dead_lettered", "Records written to emails.dlq, by reason.", ["reason"]
)
REDELIVERED = Counter(
    "triggerline_mailer_redelivered",
    "Requests whose key was already settled (redelivery, replay): nothing sent again.",
    ["campaign"],
)
HELD = Counter(
    "triggerline_mailer_held",
    "Requests put back on their partition because the SMTP server or database was down.",
    ["reason"],
)
SEND_SECONDS = Histogram(
    "triggerline_mailer_send_seconds",
    "Time of one SMTP transaction, connection included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BROKEN_TEMPLATES = Gauge(
    "triggerline_mailer_broken_templates", "Campaigns whose template does not compile."
)


def count(request: EmailRequest, report: Report) -> None:
    """Move the counter a request's report belongs to (holds and bugs move none here).

    A retry record that spends no attempt (a deferral) counts nowhere; a key reported as it
    already stood counts as redelivered, whatever its status.
    """
    campaign = request.campaign
    if report.retry is not None:
        if report.retry.attempt > request.attempt:
            RETRIED.labels(campaign, report.retry.topic).inc()
        return
    outcome = report.outcome
    if outcome is None:
        return
    reason = outcome.reason or ""
    if outcome.detail.get("redelivered"):
        REDELIVERED.labels(campaign).inc()
    elif outcome.status is OutcomeStatus.SENT:
        SENT.labels(campaign).inc()
    elif outcome.status is OutcomeStatus.EXPIRED:
        EXPIRED.labels(campaign).inc()
    elif outcome.status is OutcomeStatus.SUPPRESSED:
        SUPPRESSED.labels(campaign, reason).inc()
    elif outcome.status is OutcomeStatus.UNKNOWN or (
        outcome.status is OutcomeStatus.FAILED and reason != "internal_error"
    ):
        FAILED.labels(campaign, reason).inc()
