"""The upstream pointer (partition -> next offset), kept in a compacted Kafka topic.

Pointer records are produced in the same transaction as the messages they cover, so after any
crash the committed pointer and the committed messages agree: nothing is lost, nothing repeats.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from services.common.errors import TransientFailure
from services.common.kafka import make_reader
from services.common.settings import KafkaSettings
from services.common.topics import topics
from services.fetcher.rules.cursor import Cursor

log = logging.getLogger(__name__)


def pointer_key(consumer: str, topic: str, partition: int) -> bytes:
    return f"{consumer}|{topic}|{partition}".encode()


def load_pointers(
    settings: KafkaSettings, consumer: str, topic: str, timeout: float = 30.0
) -> dict[int, Cursor]:
    """Read the committed pointer of (consumer, topic): upstream partition -> its cursor."""
    # committed data only (make_reader): only pointers whose messages were committed count
    reader = make_reader(
        settings, "triggerline-pointer-reader", overrides={"enable.partition.eof": True}
    )
    try:
        return _read_all(reader, consumer, topic, timeout)
    finally:
        reader.close()


def _read_all(reader: Consumer, consumer: str, topic: str, timeout: float) -> dict[int, Cursor]:
    name = topics().fetcher_pointers.name
    partitions = reader.list_topics(name, timeout=timeout).topics[name].partitions
    prefix = f"{consumer}|{topic}|".encode()
    pointers: dict[int, Cursor] = {}
    reader.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in partitions])
    # Partition EOF (at the last stable offset, under read_committed) ends the read; transaction
    # markers make offsets unreliable as an end condition.
    waiting = set(partitions)
    deadline = time.monotonic() + timeout
    while waiting:
        if time.monotonic() > deadline:
            raise TransientFailure(f"reading the pointer topic {name} took over {timeout:.0f}s")
        message = reader.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                waiting.discard(message.partition())
            continue
        key = message.key() or b""
        value = message.value()
        if key.startswith(prefix) and value:
            pointers[int(key[len(prefix) :])] = Cursor.decode(value)
    return pointers
