"""The processor worker end to end on the real broker: every path a trigger can take."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from services.common.models import OutcomeStatus
from services.common.topics import topics
from services.processor.rules.keys import idempotency_key
from services.simulator.catalog import UNKNOWN_TRIGGER_ID
from services.simulator.population import Shopper
from tests.conftest import Consumed
from tests.integration.processor.conftest import RunningProcessor, seed_database
from tests.integration.processor.records import (
    as_outcomes,
    as_requests,
    outcomes_for,
    produce,
    requests_for,
)
from tests.integration.processor.triggers import adobe_envelope, build, random_mcid
from tests.support.deadlines import wait_until
from tests.support.kafka_messages import header_of

pytestmark = pytest.mark.kafka

CART = topics().emails("cart_abandonment").name


def test_cart_trigger_becomes_one_email_request(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
) -> None:
    """Resolved by mcId, and by the declared id in a stray-space ` eVar01` for a new browser."""
    running = processor_factory()
    by_mcid = build(adobe_envelope(mcid=shoppers[0].mcid))
    by_declared = build(adobe_envelope(mcid=random_mcid(), declared_id=shoppers[1].declared_id))
    produce(producer, (by_mcid.key, by_mcid.value), (by_declared.key, by_declared.value))

    ids = {by_mcid.message_id, by_declared.message_id}
    consumed = consume_until([CART], 2, deadline=90, match=requests_for(ids), settle=2)
    requests = {r.message_id: r for r in as_requests(consumed)}
    assert len(consumed.messages) == 2, running.log_tail()
    first, second = requests[by_mcid.message_id], requests[by_declared.message_id]
    assert (first.profile_id, first.email) == (shoppers[0].profile_id, shoppers[0].email)
    assert (second.profile_id, second.email) == (shoppers[1].profile_id, shoppers[1].email)
    assert first.products == ("Blue Kettle", "Tea Cups")
    assert first.variables["cartUrl"] == "https://shop.example/cart"
    assert first.idempotency_key == idempotency_key(
        "cart_abandonment", shoppers[0].profile_id, by_mcid.message_id
    )
    assert first.expires_at is not None and first.expires_at > first.trigger_timestamp
    keys = {m.key() for m in consumed.messages}
    assert keys == {shoppers[0].profile_id.encode(), shoppers[1].profile_id.encode()}


def test_unrouted_unmatched_and_invalid_each_get_their_outcome(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    unique: str,
) -> None:
    running = processor_factory()
    unrouted = build(adobe_envelope(mcid=shoppers[0].mcid, trigger_id=UNKNOWN_TRIGGER_ID))
    stranger_mcid = random_mcid()
    unmatched = build(adobe_envelope(mcid=stranger_mcid))
    garbage_key = f"garbage-{unique}".encode()
    produce(
        producer,
        (unrouted.key, unrouted.value),
        (unmatched.key, unmatched.value),
        (garbage_key, b"\x00not avro at all"),
    )

    outcomes = as_outcomes(
        consume_until(
            [topics().outcomes.name],
            2,
            deadline=90,
            match=outcomes_for({unrouted.message_id, unmatched.message_id}),
        )
    )
    by_id = {o.message_id: o for o in outcomes}
    assert by_id[unrouted.message_id].status is OutcomeStatus.UNROUTED, running.log_tail()
    assert by_id[unmatched.message_id].status is OutcomeStatus.UNMATCHED

    parked = consume_until(
        [topics().triggers_unmatched.name],
        1,
        deadline=30,
        match=lambda m: m.key() == stranger_mcid.encode(),
    )
    assert len(parked.messages) == 1
    assert parked.values() == [unmatched.value]  # the original bytes: re-drivable as they are
    assert header_of(parked.messages[0], "x-error-reason") == "no_profile"
    assert header_of(parked.messages[0], "x-original-topic") == topics().triggers_raw.name

    dead = consume_until(
        [topics().triggers_dlq.name], 1, deadline=30, match=lambda m: m.key() == garbage_key
    )
    assert len(dead.messages) == 1, running.log_tail()
    dead_letter = dead.messages[0]
    assert header_of(dead_letter, "x-error-reason") == "not_avro"
    assert header_of(dead_letter, "x-service") == "processor"
    assert header_of(dead_letter, "x-original-offset") is not None
    position = (
        f"{topics().triggers_raw.name}:{header_of(dead_letter, 'x-original-partition')}:"
        f"{header_of(dead_letter, 'x-original-offset')}"
    )
    invalid = as_outcomes(
        consume_until([topics().outcomes.name], 1, deadline=30, match=outcomes_for({position}))
    )
    assert [o.status for o in invalid] == [OutcomeStatus.INVALID]
    assert invalid[0].reason == "not_avro"


def test_same_message_twice_gives_one_request_and_a_duplicate(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
) -> None:
    running = processor_factory()
    message_id = str(uuid.uuid4())
    record = build(adobe_envelope(mcid=shoppers[2].mcid, message_id=message_id))
    produce(producer, (record.key, record.value))
    produce(producer, (record.key, record.value))

    requests = consume_until([CART], 1, deadline=90, match=requests_for({message_id}), settle=3)
    assert len(requests.messages) == 1, running.log_tail()
    outcomes = as_outcomes(
        consume_until(
            [topics().outcomes.name], 1, deadline=30, match=outcomes_for({message_id}), settle=2
        )
    )
    assert [(o.status, o.reason) for o in outcomes] == [(OutcomeStatus.DUPLICATE, "repeat_message")]


def test_database_outage_delays_but_never_drops_a_trigger(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    tmp_path: Path,
) -> None:
    """Lookups fail (no schema yet), the worker retries in place and is not ready; once the
    database works the same trigger is mailed, with no outcome recorded in between."""
    late_url = f"sqlite:///{tmp_path / 'late.db'}"
    running = processor_factory(
        {"TRIGGERLINE_DB_URL": late_url, "TRIGGERLINE_PROCESSOR_DB_RETRY_MAX": "1s"}
    )
    record = build(adobe_envelope(mcid=shoppers[0].mcid))
    produce(producer, (record.key, record.value))

    wait_until(
        lambda: b"database" in running.get("/readyz")[1],
        60,
        every=0.3,
        what=lambda: f"readiness to wait for the database:\n{running.log_tail()}",
    )
    status, body = running.get("/readyz")
    assert status == 503 and b"database" in body, running.log_tail()
    early = consume_until(
        [topics().outcomes.name], 0, deadline=1, match=outcomes_for({record.message_id}), settle=1
    )
    assert early.messages == []

    seed_database(late_url, shoppers)
    requests = consume_until([CART], 1, deadline=60, match=requests_for({record.message_id}))
    assert [r.email for r in as_requests(requests)] == [shoppers[0].email], running.log_tail()
    wait_until(
        lambda: running.get("/readyz")[0] == 200,
        30,
        every=0.3,
        what=lambda: f"readiness again:\n{running.log_tail()}",
    )
    assert running.get("/readyz") == (200, b'{"status": "ok", "waiting_for": {}}')
    metrics = running.get("/metrics")[1].decode()
    assert "triggerline_processor_db_retries_total" in metrics
