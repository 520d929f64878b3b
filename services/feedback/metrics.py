"""Prometheus metrics of the feedback service."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS = Counter(
    "triggerline_feedback_events",
    "Recipient events by kind (unsubscribe, hard_bounce, soft_bounce, policy_bounce, "
    "complaint) and result (new, replay).",
    ["kind", "result"],
)
SUPPRESSIONS = Counter(
    "triggerline_feedback_suppressions",
    "Suppressions written, by reason and change (insert, widen).",
    ["reason", "change"],
)
REFUSED = Counter(
    "triggerline_feedback_refused",
    "Tokens refused, by where (http, smtp) and reason (malformed, bad_signature, "
    "unknown_key, expired, unknown_ref...). Many bad_signature: someone is guessing.",
    ["where", "reason"],
)
DEAD_LETTERS = Counter(
    "triggerline_feedback_dead_letters",
    "Inbound messages kept in the dead-letter table, by reason.",
    ["reason"],
)
IGNORED_REPORTS = Counter(
    "triggerline_feedback_ignored_reports",
    "Readable reports that ask for nothing (success DSNs, not-spam feedback), by type.",
    ["report_type"],
)
POLICY_BOUNCES = Counter(
    "triggerline_feedback_policy_bounces",
    "DSNs refusing us rather than the address (x.5.x, x.6.x, x.7.x); a rise means "
    "authentication, reputation or content trouble: alert on it.",
    ["status"],
)
PUBLISH_FAILURES = Counter(
    "triggerline_feedback_publish_failures",
    "Outcomes Kafka did not acknowledge; each is sent again from the events table.",
)
