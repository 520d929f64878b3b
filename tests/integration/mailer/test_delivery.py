"""The mailer on the real broker, sending to the in-process SMTP sink."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select

from services.common.db.tables import deliveries, suppressions
from services.common.kafka import header
from services.common.models import OutcomeStatus
from services.mailer.publishing import message_headers
from services.simulator.sink_faults import Fault
from services.simulator.smtp_sink import SmtpSink, free_port
from tests.support.mailer_world import Scenario, decode_outcome, outcome_for

pytestmark = pytest.mark.kafka


def delivery_rows(scenario: Scenario) -> dict[str, tuple[str, int]]:
    engine = create_engine(scenario.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.idempotency_key, deliveries.c.status, deliveries.c.attempts)
            ).all()
    finally:
        engine.dispose()
    return {row.idempotency_key: (row.status, row.attempts) for row in rows}


def test_one_personalised_email_per_request(scenario: Scenario) -> None:
    requests = [scenario.request(n) for n in range(20)]
    keys = {r.idempotency_key for r in requests}
    scenario.start_mailer()
    scenario.produce(requests)

    outcomes = [decode_outcome(m) for m in scenario.outcomes.read(outcome_for(keys), 20)]
    mails = scenario.sink.wait_for(20, timeout=10)

    assert Counter(o.status for o in outcomes) == {OutcomeStatus.SENT: 20}
    assert {o.idempotency_key for o in outcomes} == keys
    assert len(mails) == 20
    by_recipient = {mail.rcpt_tos[0]: mail for mail in mails}
    for request in requests:
        mail = by_recipient[request.email]
        parsed = mail.parsed()
        assert request.products[0] in parsed["Subject"]
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert str(parsed["List-Unsubscribe"]).startswith("<https://")
        html = parsed.get_body(("html",))
        assert html is not None and request.variables["cartUrl"] in html.get_content()
        outcome = next(o for o in outcomes if o.idempotency_key == request.idempotency_key)
        assert outcome.detail["smtpMessageId"] == mail.message_id == parsed["Message-ID"]
        assert outcome.message_id == request.message_id and outcome.service == "mailer"
        assert mail.path is not None
        assert (
            mail.path.read_bytes() == f"Return-Path: <{mail.mail_from}>\r\n".encode() + mail.content
        )
        assert mail.mail_from.startswith("bounce+") and mail.mail_from.endswith(
            "@bounces.example.com"
        )
    assert set(delivery_rows(scenario).values()) == {("sent", 1)}
    # connections are pooled: far fewer sessions than messages
    assert scenario.sink.sessions <= 4


def test_a_request_delivered_twice_is_emailed_once(scenario: Scenario) -> None:
    request = scenario.request(1)
    scenario.start_mailer()
    scenario.produce([request, request])
    first = scenario.outcomes.read(outcome_for({request.idempotency_key}), 2, deadline=30)
    scenario.produce([request])  # a replay long after the first send
    outcomes = [
        decode_outcome(m)
        for m in scenario.outcomes.read(outcome_for({request.idempotency_key}), 3, settle=2)
    ]

    assert len(first) == 2
    assert len(scenario.sink.messages) == 1
    assert [o.status for o in outcomes] == [OutcomeStatus.SENT] * 3
    assert {o.detail["smtpMessageId"] for o in outcomes} == {scenario.sink.messages[0].message_id}
    assert sum(o.detail.get("redelivered") == "true" for o in outcomes) == 2


def test_a_451_is_retried_through_the_delay_topic_then_sent(scenario: Scenario) -> None:
    request = scenario.request(1)
    scenario.sink.set_fault(request.email, Fault("rcpt", "451 4.3.0 Try again later", times=1))
    scenario.start_mailer()
    started = datetime.now(UTC)
    scenario.produce([request])

    outcomes = scenario.outcomes.read(outcome_for({request.idempotency_key}), 1, deadline=30)
    assert [decode_outcome(m).status for m in outcomes] == [OutcomeStatus.SENT]
    assert decode_outcome(outcomes[0]).detail["attempts"] == "2"
    # the retry waited its configured delay (1s) before the second attempt
    assert decode_outcome(outcomes[0]).at - started >= timedelta(seconds=1)
    assert len(scenario.sink.messages) == 1
    assert delivery_rows(scenario)[request.idempotency_key] == ("sent", 2)


def test_persistent_451_ends_in_the_dlq_after_the_last_retry(scenario: Scenario) -> None:
    request = scenario.request(1)
    scenario.sink.set_fault(request.email, Fault("rcpt", "451 4.3.0 Try again later"))
    scenario.start_mailer()
    scenario.produce([request])

    outcomes = scenario.outcomes.read(outcome_for({request.idempotency_key}), 1, deadline=40)
    dead = scenario.dlq.read(lambda m: m.key() == request.profile_id.encode(), 1, deadline=10)

    assert [(decode_outcome(m).status, decode_outcome(m).reason) for m in outcomes] == [
        (OutcomeStatus.FAILED, "retries_exhausted")
    ]
    assert len(dead) == 1
    headers = message_headers(dead[0])
    assert header(headers, "x-error-reason") == "retries_exhausted"
    assert header(headers, "x-original-topic") == scenario.topic
    assert header(headers, "x-attempt") == "2"
    assert "451" in (header(headers, "x-error-message") or "")
    assert scenario.sink.messages == []
    assert delivery_rows(scenario)[request.idempotency_key] == ("failed", 3)


def test_a_hard_bounce_suppresses_the_address(scenario: Scenario) -> None:
    bounced = scenario.request(1)
    later = scenario.request(2, email=bounced.email.upper())
    scenario.sink.set_fault(bounced.email, Fault("rcpt", "550 5.1.1 No such user"))
    scenario.start_mailer()
    scenario.produce([bounced])
    first = scenario.outcomes.read(outcome_for({bounced.idempotency_key}), 1, deadline=30)
    scenario.produce([later])
    second = scenario.outcomes.read(outcome_for({later.idempotency_key}), 1, deadline=30)

    assert [(decode_outcome(m).status, decode_outcome(m).reason) for m in first] == [
        (OutcomeStatus.FAILED, "hard_bounce")
    ]
    assert decode_outcome(first[0]).detail["smtpCode"] == "550"
    assert [(decode_outcome(m).status, decode_outcome(m).reason) for m in second] == [
        (OutcomeStatus.SUPPRESSED, "hard_bounce")
    ]
    engine = create_engine(scenario.db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(suppressions.c.email, suppressions.c.reason)).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [(bounced.email, "hard_bounce")]
    assert scenario.sink.messages == []
    assert delivery_rows(scenario) == {
        bounced.idempotency_key: ("failed", 1),
        later.idempotency_key: ("ignored", 0),
    }


def test_broken_templates_are_dead_lettered_with_the_reason(scenario: Scenario) -> None:
    templates = scenario.tmp_path / "templates"
    for name, html in (("missing_var", "<p>{{ coupon_code }}</p>"), ("bad_syntax", "{% if %}")):
        (templates / name).mkdir(parents=True)
        (templates / name / "subject.txt").write_text("Hello")
        (templates / name / "body.html").write_text(html)
        (templates / name / "body.txt").write_text("Hello")
    scenario.templates_dir = templates
    missing, broken = f"{scenario.campaign}m", f"{scenario.campaign}b"
    scenario.write_pipeline({missing: "missing_var", broken: "bad_syntax"})
    first = scenario.request(1, campaign=missing)
    second = scenario.request(2, campaign=broken)
    mailer = scenario.start_mailer()
    assert set(mailer.catalog.current.templates.broken) == {broken}
    scenario.produce([first], topic=scenario.create_topic(missing))
    scenario.produce([second], topic=scenario.create_topic(broken))

    keys = {first.idempotency_key, second.idempotency_key}
    outcomes = {
        decode_outcome(m).idempotency_key: decode_outcome(m)
        for m in scenario.outcomes.read(outcome_for(keys), 2, deadline=40)
    }
    dead = scenario.dlq.read(
        lambda m: m.key() in {first.profile_id.encode(), second.profile_id.encode()}, 2
    )

    assert outcomes[first.idempotency_key].status is OutcomeStatus.FAILED
    assert outcomes[first.idempotency_key].reason == "template_error"
    assert outcomes[second.idempotency_key].reason == "template_broken"
    reasons = {
        (m.key() or b"").decode(): (
            header(message_headers(m), "x-error-reason"),
            header(message_headers(m), "x-error-message") or "",
        )
        for m in dead
    }
    assert reasons[first.profile_id][0] == "template_error"
    assert "coupon_code" in reasons[first.profile_id][1]
    assert reasons[second.profile_id][0] == "template_broken"
    assert "bad_syntax/body.html" in reasons[second.profile_id][1]
    assert scenario.sink.messages == []


def test_a_connection_dropped_after_data_is_never_resent_blindly(scenario: Scenario) -> None:
    request = scenario.request(1)
    scenario.sink.set_fault(request.email, Fault("drop"))
    scenario.start_mailer()
    scenario.produce([request])
    first = scenario.outcomes.read(outcome_for({request.idempotency_key}), 1)
    scenario.produce([request])  # redelivered, e.g. by a rebalance before the commit
    outcomes = scenario.outcomes.read(outcome_for({request.idempotency_key}), 2, settle=4)
    dead = scenario.dlq.read(lambda m: m.key() == request.profile_id.encode(), 1)

    assert [(decode_outcome(m).status, decode_outcome(m).reason) for m in first] == [
        (OutcomeStatus.UNKNOWN, "smtp_unknown")
    ]
    assert [decode_outcome(m).status for m in outcomes] == [OutcomeStatus.UNKNOWN] * 2
    assert decode_outcome(outcomes[1]).detail.get("redelivered") == "true"
    assert header(message_headers(dead[0]), "x-error-reason") == "smtp_unknown"
    assert [m.dropped for m in scenario.sink.messages] == [True]  # one attempt, never two
    assert delivery_rows(scenario)[request.idempotency_key] == ("unknown", 1)


def test_expired_requests_are_not_sent(scenario: Scenario) -> None:
    stale = scenario.request(1, trigger_timestamp=datetime.now(UTC) - timedelta(days=2))
    overdue = scenario.request(2, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    keys = {stale.idempotency_key, overdue.idempotency_key}
    scenario.start_mailer()
    scenario.produce([stale, overdue])

    outcomes = scenario.outcomes.read(outcome_for(keys), 2, deadline=30)
    assert sorted(decode_outcome(m).status for m in outcomes) == [OutcomeStatus.EXPIRED] * 2
    assert scenario.sink.messages == []
    assert set(delivery_rows(scenario).values()) == {("expired", 0)}


def test_a_campaign_added_while_running_is_picked_up(scenario: Scenario) -> None:
    scenario.start_mailer()
    newcomer = f"{scenario.campaign}new"
    scenario.write_pipeline({scenario.campaign: "cart_abandonment", newcomer: "cart_abandonment"})
    topic = scenario.create_topic(newcomer)
    request = scenario.request(1, campaign=newcomer)
    scenario.produce([request], topic=topic)

    outcomes = scenario.outcomes.read(outcome_for({request.idempotency_key}), 1, deadline=60)
    assert [decode_outcome(m).status for m in outcomes] == [OutcomeStatus.SENT]
    assert [m.rcpt_tos for m in scenario.sink.messages] == [(request.email,)]


def test_an_smtp_outage_loses_nothing_and_sending_resumes_by_itself(scenario: Scenario) -> None:
    requests = [scenario.request(n) for n in range(5)]
    keys = {r.idempotency_key for r in requests}
    down_port = free_port()
    scenario.start_mailer(smtp_port=down_port)
    scenario.produce(requests)

    during = scenario.outcomes.read(outcome_for(keys), 1, deadline=4)
    assert during == []  # held on the partition, not failed, not sent to retry topics
    with SmtpSink(port=down_port) as revived:
        outcomes = [
            decode_outcome(m) for m in scenario.outcomes.read(outcome_for(keys), 5, deadline=60)
        ]
        mails = revived.wait_for(5, timeout=10)

    assert Counter(o.status for o in outcomes) == {OutcomeStatus.SENT: 5}
    assert sorted(m.rcpt_tos[0] for m in mails) == sorted(r.email for r in requests)
    assert {status for status, _ in delivery_rows(scenario).values()} == {"sent"}
