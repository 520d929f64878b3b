"""`triggerline status` computes lag from committed offsets and partition ends."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.kafka import make_admin
from services.common.settings import KafkaSettings
from services.ops.status import group_lag, render, waiting


def test_lag_is_end_minus_committed_per_topic(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    group_id: str,
) -> None:
    topic = topic_factory("status", partitions=2)
    for i in range(10):
        producer.produce(topic, value=b"v", partition=i % 2)
    producer.flush(10)
    committer = Consumer(
        {"bootstrap.servers": kafka_settings.bootstrap_servers, "group.id": group_id}
    )
    committer.commit(
        offsets=[TopicPartition(topic, 0, 2), TopicPartition(topic, 1, 5)], asynchronous=False
    )
    rows = group_lag(make_admin(kafka_settings), committer, group_id)
    assert [(r.topic, r.committed, r.end, r.lag) for r in rows] == [(topic, 7, 10, 3)]
    assert waiting(committer, topic) == 10
    committer.close()
    assert f"{topic}" in render(rows, {topic: 10}, None)
