"""`triggerline replay` against the real broker: plans, refusals, rewinds and re-drives."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.dlq import dead_letter_headers
from services.common.kafka import header
from services.common.settings import KafkaSettings
from services.ops.replay import GroupActive, apply_rewind, redrive, rewind_plan


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def _consume_all(consumer: Consumer, topic: str, count: int) -> None:
    consumer.subscribe([topic])
    seen, end = 0, time.monotonic() + 30
    while seen < count and time.monotonic() < end:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen += 1
    assert seen == count
    consumer.commit(asynchronous=False)


def test_rewind_shows_the_plan_refuses_a_live_group_then_applies(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    group_id: str,
) -> None:
    topic = topic_factory("replay", partitions=3)
    for i in range(30):
        producer.produce(topic, key=str(i).encode(), value=b"v", partition=i % 3)
    producer.flush(10)
    live = _consumer(kafka_settings.bootstrap_servers, group_id)
    _consume_all(live, topic, 30)
    moves = rewind_plan(kafka_settings, group_id, topic, "earliest")
    assert [(m.committed, m.target) for m in moves] == [(10, 0)] * 3
    assert sum(m.replayed for m in moves) == 30
    with pytest.raises(GroupActive, match="stop them first"):
        apply_rewind(kafka_settings, group_id, topic, moves)
    live.close()
    apply_rewind(kafka_settings, group_id, topic, moves)
    check = _consumer(kafka_settings.bootstrap_servers, group_id)
    committed = check.committed([TopicPartition(topic, p) for p in range(3)], 10)
    check.close()
    assert [tp.offset for tp in committed] == [0, 0, 0]


def test_rewind_to_a_time_starts_at_the_first_record_from_then(
    kafka_settings: KafkaSettings, topic_factory: Callable[..., str], producer: Producer
) -> None:
    topic = topic_factory("replay-time", partitions=1)
    now = int(time.time() * 1000)
    for i in range(10):
        producer.produce(topic, value=b"old", partition=0, timestamp=now - 3_600_000 + i)
    for i in range(5):
        producer.produce(topic, value=b"new", partition=0, timestamp=now + i)
    producer.flush(10)
    from datetime import UTC, datetime

    moves = rewind_plan(
        kafka_settings, "replay-time-group", topic, "datetime",
        when=datetime.fromtimestamp((now - 60_000) / 1000, UTC),
    )  # fmt: skip
    assert moves[0].target == 10


def test_redrive_sends_dead_letters_back_with_their_headers_once(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    consume_until: Any,
    unique: str,
) -> None:
    dlq, original = topic_factory("dlq", partitions=1), topic_factory("orig", partitions=1)
    for i in range(3):
        headers = dead_letter_headers(
            service="processor",
            reason="no_profile",
            error=None,
            source_topic=original,
            source_partition=0,
            source_offset=i,
            original=[("message-id", f"m{i}".encode())],
        )
        producer.produce(dlq, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=headers)
    producer.produce(dlq, value=b"from upstream", headers=[("x-original-topic", b"pipeline:x")])
    producer.flush(10)
    group = f"redrive-{unique}"
    plan = redrive(kafka_settings, dlq, None, execute=False, group=group, allowed={original})
    assert plan == {original: 3, "(not re-drivable)": 1}
    done = redrive(kafka_settings, dlq, None, execute=True, group=group, allowed={original})
    assert done[original] == 3
    back = consume_until([original], 3, deadline=30, settle=1)
    assert sorted(m.value() for m in back.messages) == [b"v0", b"v1", b"v2"]
    assert {header(m.headers(), "x-redrive-count") for m in back.messages} == {"1"}
    assert {header(m.headers(), "message-id") for m in back.messages} == {"m0", "m1", "m2"}
    # a second run finds nothing new: the re-drive group committed past them
    again = redrive(kafka_settings, dlq, None, execute=True, group=group, allowed={original})
    assert again[original] == 0
