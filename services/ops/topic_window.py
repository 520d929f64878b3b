"""Reading a topic from a point in time up to where it ended when the reading began."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from services.common.kafka import high_watermark
from services.ops.errors import OperatorError


def partitions_of(consumer: Consumer, topic: str) -> list[int]:
    """The topic's partition numbers; an unknown topic is the operator's error."""
    metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise OperatorError(f"topic {topic} does not exist on this cluster")
    return sorted(metadata.partitions)


def offsets_at(
    consumer: Consumer, topic: str, partitions: Sequence[int], when: datetime
) -> dict[int, int]:
    """Per partition, the first offset whose timestamp is at or after `when` (-1: none yet)."""
    stamp = int(when.timestamp() * 1000)
    found = consumer.offsets_for_times([TopicPartition(topic, p, stamp) for p in partitions], 30)
    return {tp.partition: tp.offset for tp in found}


class WindowReader:
    """Assigns partitions of one or more topics from given offsets and reads each up to the end
    it had at the start, so a report is of a fixed span even while records keep arriving.

    Under `read_committed` the last offsets may be transaction markers that are never delivered;
    a partition is done once the consumer's position reaches its end, or at end-of-partition.
    """

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._ends: dict[tuple[str, int], int] = {}
        self._assigned: list[TopicPartition] = []

    def add(self, topic: str, starts: dict[int, int]) -> None:
        """Read `topic` from `starts` (partition -> offset; negative: from its current end)."""
        for partition, start in starts.items():
            end = high_watermark(self._consumer, topic, partition)
            offset = end if start < 0 else start
            self._ends[(topic, partition)] = end
            self._assigned.append(TopicPartition(topic, partition, offset))

    def assignment(self) -> list[TopicPartition]:
        """Where each partition starts, for a reader that goes on past the ends."""
        return list(self._assigned)

    @property
    def pending(self) -> int:
        """Records (markers included) between the starts and the ends: a progress total."""
        starts = {(tp.topic, tp.partition): tp.offset for tp in self._assigned}
        return sum(max(0, end - starts[key]) for key, end in self._ends.items())

    def read(self, idle_seconds: float = 5.0) -> Iterator[Message]:
        """Every record up to the ends; stops early only after `idle_seconds` without progress
        (a transaction left open upstream holds `read_committed` readers back)."""
        if not self._assigned:
            return
        self._consumer.assign(self._assigned)
        open_parts = {key for key, end in self._ends.items() if end > self._start_of(key)}
        idle_since = time.monotonic()
        while open_parts:
            batch = self._consumer.consume(1000, 0.5)
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_parts.discard((message.topic() or "", message.partition() or 0))
                        continue
                    raise OperatorError(f"reading {message.topic()}: {error.str()}")
                key = (message.topic() or "", message.partition() or 0)
                if key not in open_parts:
                    continue
                offset = message.offset() or 0
                if offset >= self._ends[key]:
                    open_parts.discard(key)
                    continue
                yield message
                if offset + 1 >= self._ends[key]:
                    open_parts.discard(key)
            if batch:
                idle_since = time.monotonic()
                continue
            positions = self._consumer.position(
                [TopicPartition(t, p) for t, p in sorted(open_parts)]
            )
            for tp in positions:
                if tp.offset >= 0 and tp.offset >= self._ends[(tp.topic, tp.partition)]:
                    open_parts.discard((tp.topic, tp.partition))
            if time.monotonic() - idle_since > idle_seconds:
                return

    def _start_of(self, key: tuple[str, int]) -> int:
        for tp in self._assigned:
            if (tp.topic, tp.partition) == key:
                return int(tp.offset)
        return 0
