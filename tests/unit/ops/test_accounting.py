"""Accounting of triggers against outcomes: settled outcomes, in = out per hour, oldest open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.models import Outcome, OutcomeStatus
from services.ops.rules.accounting import Ledger, render_report, report, settles

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
S = OutcomeStatus


def outcome(
    message_id: str,
    status: OutcomeStatus,
    reason: str | None = None,
    campaign: str | None = "cart",
    service: str = "processor",
) -> Outcome:
    return Outcome(status, message_id, service, reason=reason, campaign=campaign, at=T0)


@pytest.mark.parametrize(
    ("sequence", "settled"),
    [
        ([(S.SENT, None)], ("sent", None)),
        ([(S.UNMATCHED, "no_profile"), (S.SENT, None)], ("sent", None)),  # re-driven
        ([(S.FAILED, "template_error"), (S.SENT, None)], ("sent", None)),  # fixed
        (
            [(S.FAILED, "template_error"), (S.FAILED, "already_failed")],
            ("failed", "template_error"),
        ),  # a replay's repeat keeps the first reason
        ([(S.SENT, None), (S.DUPLICATE, None)], ("sent", None)),  # rewound processor
        ([(S.DUPLICATE, None)], ("duplicate", None)),  # a genuine duplicate
        ([(S.UNMATCHED, "no_profile"), (S.UNMATCHED, "no_profile")], ("unmatched", "no_profile")),
        ([(S.UNMATCHED, "no_profile"), (S.EXPIRED, "validity")], ("expired", "validity")),
    ],
)
def test_the_most_decisive_outcome_settles_a_trigger(
    sequence: list[tuple[OutcomeStatus, str | None]], settled: tuple[str, str | None]
) -> None:
    current = None
    for status, reason in sequence:
        current = settles(outcome("m", status, reason), current) or current
    assert current is not None and (current.status, current.reason) == settled


def test_report_counts_triggers_per_hour_and_finds_the_oldest_open_one() -> None:
    ledger = Ledger()
    ledger.arrive("a", T0 + timedelta(minutes=5), "triggers.raw:0:1")
    ledger.arrive("b", T0 + timedelta(minutes=10), "triggers.raw:0:2")
    ledger.arrive("c", T0 + timedelta(minutes=70), "triggers.raw:1:7")
    ledger.arrive("d", T0 + timedelta(minutes=80), "triggers.raw:1:8")
    ledger.arrive("a", T0 + timedelta(minutes=90), "triggers.raw:2:1")  # re-driven copy
    ledger.arrive("old", T0 - timedelta(hours=3), "triggers.raw:0:0")  # before the window
    for message_id, status, reason in [
        ("a", S.UNMATCHED, "no_profile"),
        ("a", S.SENT, None),
        ("b", S.SENT, None),
        ("c", S.SUPPRESSED, "no_consent"),
        ("old", S.SENT, None),
    ]:
        ledger.outcome(outcome(message_id, status, reason))
    ledger.outcome(outcome("sha256:x", S.INVALID, "not_json", None, "fetcher"))  # never a record
    now = T0 + timedelta(minutes=100)
    result = report(ledger, T0, now)
    assert result.counts == {
        ("sent", None): 2,
        ("suppressed", "no_consent"): 1,
        ("invalid", "not_json"): 1,
    }
    assert [(h.start.hour, h.triggers_in, h.triggers_out) for h in result.hours] == [
        (10, 3, 3),  # a, b and the fetcher's invalid one (at T0)
        (11, 2, 1),
    ]
    assert result.oldest_open is not None and result.oldest_open.message_id == "d"
    assert result.oldest_open.age == timedelta(minutes=20)
    assert result.outcome_records == 6
    text = render_report(result)
    assert "in != out" in text and "oldest trigger without an outcome: d" in text
    cart = report(ledger, T0, now, campaign="cart")
    assert cart.triggers_in == 3
    assert cart.counts == {("sent", None): 2, ("suppressed", "no_consent"): 1}
    assert report(ledger, T0, now).to_json()["open"] == 1


def test_an_exporter_forgets_triggers_older_than_its_window() -> None:
    ledger = Ledger()
    ledger.arrive("a", T0, "x")
    ledger.arrive("b", T0 + timedelta(hours=2), "x")
    ledger.outcome(outcome("a", S.SENT))
    ledger.forget_before(T0 + timedelta(hours=1))
    assert list(ledger.arrivals) == ["b"] and not ledger.settled


def test_the_exporter_serves_the_report_as_gauges() -> None:
    import threading

    from prometheus_client import CollectorRegistry, generate_latest

    from services.ops.outcomes import LedgerCollector

    ledger = Ledger()
    now = datetime.now(UTC)
    ledger.arrive("a", now - timedelta(minutes=5), "triggers.raw:0:1")
    ledger.arrive("b", now - timedelta(minutes=3), "triggers.raw:0:2")
    ledger.outcome(outcome("a", S.SUPPRESSED, "no_consent"))
    registry = CollectorRegistry()
    registry.register(LedgerCollector(ledger, threading.Lock(), timedelta(hours=1), None))
    text = generate_latest(registry).decode()
    assert 'triggerline_outcomes_triggers_in{campaign=""} 2.0' in text
    assert 'triggerline_outcomes_triggers_open{campaign=""} 1.0' in text
    assert (
        'triggerline_outcomes_settled_triggers{campaign="",reason="no_consent",'
        'status="suppressed"} 1.0' in text
    )
    assert 'triggerline_outcomes_hourly_in{campaign="",hours_ago="0"}' in text
    assert "triggerline_outcomes_oldest_open_age_seconds" in text
