"""The pipeline topic in memory: append-only partitions with increasing offsets and retention."""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Entry:
    """One stored envelope: its position and the exact line a stream sends."""

    offset: int
    create_time_ms: int
    line: bytes


class PartitionLog:
    """One partition. Offsets only grow; retention drops the oldest (count or age)."""

    def __init__(self, max_entries: int, max_age: timedelta) -> None:
        self._entries: deque[Entry] = deque()
        self._high = 0  # the next offset to be written
        self._max_entries = max_entries
        self._max_age_ms = int(max_age.total_seconds() * 1000)

    @property
    def high(self) -> int:
        return self._high

    def earliest(self, now_ms: int) -> int:
        """The oldest offset still readable (== high when the partition holds nothing)."""
        self._expire(now_ms)
        return self._entries[0].offset if self._entries else self._high

    def append(self, line_for: Callable[[int], bytes], now_ms: int) -> Entry:
        """Store the line `line_for(offset)` at the next offset."""
        entry = Entry(self._high, now_ms, line_for(self._high))
        self._entries.append(entry)
        self._high += 1
        while len(self._entries) > self._max_entries:
            self._entries.popleft()
        self._expire(now_ms)
        return entry

    def read(self, offset: int, limit: int, now_ms: int) -> list[Entry]:
        """Up to `limit` entries from `offset` on; empty when none are (still) there."""
        self._expire(now_ms)
        if not self._entries or offset >= self._high:
            return []
        index = offset - self._entries[0].offset
        if index < 0:
            return []
        # islice walks the deque once per batch; indexing a deque per entry is O(n) each time.
        return list(itertools.islice(self._entries, index, index + limit))

    def _expire(self, now_ms: int) -> None:
        cutoff = now_ms - self._max_age_ms
        while self._entries and self._entries[0].create_time_ms < cutoff:
            self._entries.popleft()


class TopicLog:
    """The partitions of the pipeline topic, and how an envelope gets its position."""

    def __init__(self, topic: str, partitions: int, max_entries: int, max_age: timedelta) -> None:
        self.topic = topic
        self.partitions = [PartitionLog(max_entries, max_age) for _ in range(partitions)]

    def append_envelope(self, envelope: dict[str, Any], partition: int, now_ms: int) -> Entry:
        """Append a DATA envelope, stamping topic, partition, offset and createTime (ms)."""
        rest = {
            key: value
            for key, value in envelope.items()
            if key not in ("envelopeType", "topic", "partition", "offset", "createTime")
        }

        def line_for(offset: int) -> bytes:
            document = {
                "envelopeType": envelope.get("envelopeType", "DATA"),
                "topic": envelope.get("topic", self.topic),
                "partition": partition,
                "offset": offset,
                "createTime": envelope.get("createTime", now_ms),
                **rest,
            }
            return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

        return self.partitions[partition].append(line_for, now_ms)

    def append_raw(self, line: bytes, partition: int, now_ms: int) -> Entry:
        """Append a line exactly as given (a deliberately malformed envelope).

        Only LF, the stream's delimiter, is flattened so one envelope stays one line; a CR stays,
        so a CRLF-terminated line reaches the reader as upstream would send it."""
        flat = line.replace(b"\n", b" ")
        return self.partitions[partition].append(lambda _offset: flat, now_ms)
