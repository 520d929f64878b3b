"""Prometheus metrics of the processor."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TRIGGERS = Counter(
    "triggerline_processor_triggers_total",
    "Triggers by stage and result (forwarded, requested, or the outcome recorded).",
    ["stage", "result"],
)
OUTCOMES = Counter(
    "triggerline_processor_outcomes_total",
    "Outcomes the processor recorded, by status and reason (the reason's kind: `cancelled_by`, "
    "not the message id it names), e.g. invalid/future_timestamp, skipped/missing_data.",
    ["status", "reason"],
)
FALLBACKS = Counter(
    "triggerline_processor_personalisation_fallbacks_total",
    "Variables that rendered their default instead of the trigger's value: absent, or unsafe "
    "(a link to a host not allowed, a value with nothing left once made header-safe).",
    ["campaign", "variable", "why"],
)
DB_RETRIES = Counter(
    "triggerline_processor_db_retries_total",
    "Database lookups retried after a transient failure.",
)
LATENCY = Histogram(
    "triggerline_processor_stage_seconds",
    "Time spent on one event, per stage.",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
)
