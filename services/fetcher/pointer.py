"""The upstream pointer (partition -> next offset), kept in a compacted Kafka topic.

Pointer records are produced in the same transaction as the messages they cover, so after any
crash the committed pointer and the committed messages agree: nothing is lost, nothing repeats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from services.common.errors import TransientFailure
from services.common.kafka import high_watermark, make_reader
from services.common.settings import KafkaSettings
from services.common.topics import topics
from services.fetcher.rules.cursor import Cursor

log = logging.getLogger(__name__)

STABLE_POLL_S = 0.1  # how often to ask whether an open transaction on the pointer topic ended


def pointer_key(consumer: str, topic: str, partition: int) -> bytes:
    return f"{consumer}|{topic}|{partition}".encode()


def load_pointers(
    settings: KafkaSettings, consumer: str, topic: str, timeout: float = 90.0
) -> dict[int, Cursor]:
    """Read the committed pointer of (consumer, topic): upstream partition -> its cursor.

    Call it only after `init_transactions` of the worker's producer: that fences the worker's
    previous incarnation and settles whatever transaction it left (committed or aborted), so
    the pointer read next is the truth about what reached `triggers.raw`.

    A `read_committed` reader stops at the partition's last stable offset, which an open
    transaction holds back: a pointer written in the commit of another worker (or of a zombie
    not yet fenced) hides every pointer committed after it. Reading then would return a stale
    pointer and the worker would write again what it had already committed. So the read waits
    until the stable offset has passed everything written before it started; an open
    transaction ends within the transaction timeout (60 s), hence the default `timeout`.
    """
    name = topics().fetcher_pointers.name
    # committed data only (make_reader): only pointers whose messages were committed count
    reader = make_reader(
        settings, "triggerline-pointer-reader", overrides={"enable.partition.eof": True}
    )
    written = make_reader(
        settings, "triggerline-pointer-reader", overrides={"isolation.level": "read_uncommitted"}
    )
    try:
        return _load(reader, written, name, consumer, topic, timeout)
    except KafkaException as exc:
        raise TransientFailure(f"reading the pointer topic {name}: {exc}") from None
    finally:
        written.close()
        reader.close()


def _load(
    reader: Consumer, written: Consumer, name: str, consumer: str, topic: str, timeout: float
) -> dict[int, Cursor]:
    """Wait until nothing written before now is still in an open transaction, then read."""
    deadline = time.monotonic() + timeout
    partitions = list(reader.list_topics(name, timeout=timeout).topics[name].partitions)
    # The end a reader sees: the high watermark when it reads uncommitted data, the last stable
    # offset when it reads committed data only.
    ends = {p: high_watermark(written, name, p) for p in partitions}
    waited = False
    while behind := unsettled(ends, {p: high_watermark(reader, name, p) for p in partitions}):
        if not waited:
            log.info("%s: waiting for a transaction open on %s to end", consumer, name)
            waited = True
        if time.monotonic() > deadline:
            raise TransientFailure(
                f"the pointer topic {name} has a transaction open for over {timeout:.0f}s "
                f"(partitions {sorted(behind)}): its pointers cannot be read yet"
            )
        time.sleep(STABLE_POLL_S)
    return _read_through(reader, name, ends, consumer, topic, deadline)


def unsettled(ends: Mapping[int, int], stable: Mapping[int, int]) -> set[int]:
    """The partitions whose last stable offset has not yet reached the end they had."""
    return {p for p, end in ends.items() if stable.get(p, -1) < end}


def _read_through(
    reader: Consumer,
    name: str,
    ends: Mapping[int, int],
    consumer: str,
    topic: str,
    deadline: float,
) -> dict[int, Cursor]:
    """Every committed pointer below `ends` (and whatever committed record follows)."""
    prefix = f"{consumer}|{topic}|".encode()
    pointers: dict[int, Cursor] = {}
    reader.assign([TopicPartition(name, p, OFFSET_BEGINNING) for p in ends])
    # A partition is read through once a record at or past the end's last offset arrives, or
    # partition EOF: the offsets just below the end may be transaction markers, never delivered,
    # and EOF alone never comes while other workers keep committing.
    waiting = {p for p, end in ends.items() if end > 0}
    while waiting:
        if time.monotonic() > deadline:
            raise TransientFailure(f"reading the pointer topic {name} took too long")
        message = reader.poll(0.5)
        if message is None:
            continue
        error = message.error()
        partition = int(message.partition() or 0)
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                waiting.discard(partition)
            continue
        if int(message.offset() or 0) >= ends[partition] - 1:
            waiting.discard(partition)
        key = message.key() or b""
        value = message.value()
        if key.startswith(prefix) and value:
            pointers[int(key[len(prefix) :])] = Cursor.decode(value)
    return pointers
