"""`triggerline status` computes lag from committed offsets and partition ends."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.kafka import make_admin
from services.common.settings import KafkaSettings
from services.ops.status import dead_letter_topics, group_lag, main, render, waiting
from tests.conftest import free_port


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


def test_status_json_reports_the_lag_of_the_named_group(
    kafka_settings: KafkaSettings,
    topic_factory: Callable[..., str],
    producer: Producer,
    group_id: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = topic_factory("status", partitions=1)
    for _ in range(4):
        producer.produce(topic, value=b"v", partition=0)
    producer.flush(10)
    committer = Consumer(
        {"bootstrap.servers": kafka_settings.bootstrap_servers, "group.id": group_id}
    )
    committer.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    committer.close()
    monkeypatch.setenv("TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers)
    # no fetcher answers on this port: its figures are null, not an error
    code = main(["--group", group_id, "--json", "--fetcher", f"http://127.0.0.1:{free_port()}"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["lag"] == [
        {"group": group_id, "topic": topic, "committed": 1, "end": 4, "lag": 3}
    ]
    assert document["fetcher"] is None
    assert set(document["dead_letters_waiting"]) == set(dead_letter_topics())
