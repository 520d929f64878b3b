"""The reader thread hands lines on in slices, bounded in bytes, not network batches."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

from services.fetcher.buffer import LineBuffer
from services.fetcher.framing import Oversized
from services.fetcher.ingest import _END, QUEUE_SLICE, IngestWorker


class OneBigBatch:
    """An upstream whose one network read holds many small envelopes, then a huge one."""

    def __init__(self, lines: int) -> None:
        self.lines: list[bytes | Oversized] = [b"{}"] * lines
        self.lines.append(Oversized(b"h" * 10, 50_000_000, "00"))

    def batches(self, _request: Any, _token: str) -> Iterator[list[bytes | Oversized]]:
        yield self.lines


class Reads:
    def __init__(self) -> None:
        self.bytes = 0

    def read(self, _worker: str, size: int, _envelopes: int) -> None:
        self.bytes += size


def test_a_large_network_batch_is_queued_in_slices_counted_in_bytes() -> None:
    upstream = OneBigBatch(1050)
    status = Reads()
    reader = SimpleNamespace(
        name="w", _upstream=upstream, _status=status, _stop=SimpleNamespace(is_set=lambda: False)
    )
    buffer = LineBuffer(10_000_000)
    IngestWorker._read(reader, None, "token", buffer)  # type: ignore[arg-type]
    items = []
    while (item := buffer.get(0.1)) is not _END:
        items.append(item)
    assert all(isinstance(item, list) and len(item) <= QUEUE_SLICE for item in items)
    # nothing lost or repeated by slicing (each item is a list, as asserted just above)
    assert sum(len(cast("list[object]", item)) for item in items) == 1051
    assert len(items) == 11
    # the oversized line counts its true size as read, only its head as held
    assert status.bytes == 1050 * 2 + 50_000_000
