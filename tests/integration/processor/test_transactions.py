"""triggers.raw is written in Kafka transactions: the processor must read committed data only,
and its committed offsets must move past the transaction markers so its lag returns to zero."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.kafka import high_watermark
from services.common.topics import topics
from services.simulator.population import Shopper
from tests.conftest import Consumed
from tests.integration.processor.conftest import RunningProcessor
from tests.integration.processor.records import (
    as_outcomes,
    as_requests,
    outcomes_for,
    requests_for,
)
from tests.integration.processor.test_flow import CART
from tests.integration.processor.triggers import adobe_envelope, build, random_mcid

pytestmark = pytest.mark.kafka

RAW = topics().triggers_raw.name


@pytest.fixture
def transactional_producer(kafka_bootstrap: str, unique: str) -> Iterator[Producer]:
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "transactional.id": f"test-fetcher-{unique}",
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    producer.init_transactions(30)
    yield producer
    producer.flush(10)


def test_aborted_transaction_never_becomes_an_email_request(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    transactional_producer: Producer,
    consume_until: Callable[..., Consumed],
) -> None:
    """A crashed fetcher's aborted batch is invisible; the committed one after it is mailed.

    Both triggers are for the same visitor (same partition, in order) and campaign. Had the
    aborted one been read, it would have been mailed and the committed one would have become a
    `duplicate` (dedup window) instead of an email request.
    """
    running = processor_factory()
    aborted = build(adobe_envelope(mcid=shoppers[0].mcid))
    committed = build(adobe_envelope(mcid=shoppers[0].mcid))

    transactional_producer.begin_transaction()
    transactional_producer.produce(RAW, key=aborted.key, value=aborted.value)
    transactional_producer.flush(10)  # on the broker, visible to read_uncommitted readers
    transactional_producer.abort_transaction(30)
    transactional_producer.begin_transaction()
    transactional_producer.produce(RAW, key=committed.key, value=committed.value)
    transactional_producer.commit_transaction(30)

    ids = {aborted.message_id, committed.message_id}
    requests = consume_until([CART], 1, deadline=90, match=requests_for(ids), settle=3)
    mailed = [r.message_id for r in as_requests(requests)]
    assert mailed == [committed.message_id], running.log_tail()
    outcomes = as_outcomes(
        consume_until([topics().outcomes.name], 0, deadline=1, match=outcomes_for(ids), settle=2)
    )
    assert outcomes == []


def committed_and_end(bootstrap: str, group: str) -> dict[int, tuple[int, int]]:
    """partition -> (the group's committed offset, the log end offset) on triggers.raw."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(RAW, timeout=10).topics[RAW].partitions
        committed = consumer.committed([TopicPartition(RAW, p) for p in partitions], timeout=10)
        result = {}
        for tp in committed:
            high = high_watermark(consumer, RAW, tp.partition)
            result[tp.partition] = (tp.offset, high)
        return result
    finally:
        consumer.close()


def wait_for_no_lag(bootstrap: str, group: str, deadline_s: float) -> dict[int, tuple[int, int]]:
    """Partitions whose committed offset still differs from the end when the wait ends."""
    deadline = time.monotonic() + deadline_s
    while True:
        lag = {p: (c, e) for p, (c, e) in committed_and_end(bootstrap, group).items() if c != e}
        if not lag or time.monotonic() > deadline:
            return lag
        time.sleep(1)  # poll interval: at the deadline the caller's assertion shows the lag left


def test_an_aborted_batch_after_a_commit_is_passed_too(
    processor_factory: Callable[..., RunningProcessor],
    transactional_producer: Producer,
    consume_until: Callable[..., Consumed],
    kafka_bootstrap: str,
) -> None:
    """Markers fetched after the processor committed its last record are committed past.

    The quiet-then-abort order: everything read is processed and committed, and only then does
    an aborted batch arrive. Its first offset is the committed offset itself, the one offset
    faust's own gap bookkeeping leaves out.
    """
    running = processor_factory()
    mcid = random_mcid()  # one visitor: one partition
    first = build(adobe_envelope(mcid=mcid))
    transactional_producer.begin_transaction()
    transactional_producer.produce(RAW, key=first.key, value=first.value)
    transactional_producer.commit_transaction(30)
    outcomes = consume_until(
        [topics().outcomes.name], 1, deadline=90, match=outcomes_for({first.message_id})
    )
    assert len(outcomes.messages) == 1, running.log_tail()
    lag = wait_for_no_lag(kafka_bootstrap, running.app_id, 60)
    assert lag == {}, f"after the committed batch: {lag}\n{running.log_tail()}"

    transactional_producer.begin_transaction()
    for _ in range(3):
        aborted = build(adobe_envelope(mcid=mcid))
        transactional_producer.produce(RAW, key=aborted.key, value=aborted.value)
    transactional_producer.flush(10)
    transactional_producer.abort_transaction(30)

    lag = wait_for_no_lag(kafka_bootstrap, running.app_id, 60)
    assert lag == {}, f"after the aborted batch: {lag}\n{running.log_tail()}"


def test_committed_offsets_pass_transaction_markers_and_lag_reaches_zero(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    transactional_producer: Producer,
    consume_until: Callable[..., Consumed],
    kafka_bootstrap: str,
) -> None:
    """A transactional burst ending in commit and abort markers leaves no lag behind.

    Each committed transaction ends with a commit marker after its last record, and aborted
    ones leave records plus an abort marker that a `read_committed` reader never sees: a
    consumer that commits "last record + 1" stays one or more offsets short on every partition.
    """
    running = processor_factory()
    before = committed_and_end(kafka_bootstrap, running.app_id)
    sent: list[str] = []
    for batch in range(12):
        transactional_producer.begin_transaction()
        for _ in range(8):
            record = build(adobe_envelope(mcid=random_mcid()))  # unknown visitors: unmatched
            transactional_producer.produce(RAW, key=record.key, value=record.value)
            if batch % 3 != 2:
                sent.append(record.message_id)
        transactional_producer.flush(10)  # aborted records really reach the log first
        if batch % 3 == 2:
            transactional_producer.abort_transaction(30)
        else:
            transactional_producer.commit_transaction(30)
    # end on an aborted transaction: trailing records and an abort marker nobody can read
    transactional_producer.begin_transaction()
    for _ in range(8):
        record = build(adobe_envelope(mcid=random_mcid()))
        transactional_producer.produce(RAW, key=record.key, value=record.value)
    transactional_producer.flush(10)
    transactional_producer.abort_transaction(30)

    outcomes = consume_until(
        [topics().outcomes.name], len(sent), deadline=120, match=outcomes_for(set(sent))
    )
    assert len(outcomes.messages) == len(sent), running.log_tail()

    lag = wait_for_no_lag(kafka_bootstrap, running.app_id, 60)
    moved = {
        p
        for p, (c, e) in committed_and_end(kafka_bootstrap, running.app_id).items()
        if e > before[p][1]
    }
    assert moved, "the burst wrote to no partition"
    assert lag == {}, f"partition: (committed, end) still apart: {lag}\n{running.log_tail()}"
