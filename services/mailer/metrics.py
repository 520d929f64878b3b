"""Prometheus metrics of the mailer, served on /metrics by the common health server."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
