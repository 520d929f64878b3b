"""The reader thread's queue bounds envelopes, not network batches."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from services.fetcher.ingest import _END, QUEUE_SLICE, IngestWorker


class OneBigBatch:
    """An upstream whose one network read holds many small envelopes."""

    def __init__(self, lines: int) -> None:
        self.lines = [b"{}"] * lines

    def batches(self, _request: Any, _token: str) -> Iterator[list[bytes]]:
        yield self.lines


def test_a_large_network_batch_is_queued_in_slices_so_the_bound_counts_envelopes() -> None:
    upstream = OneBigBatch(1050)
    reader = SimpleNamespace(_upstream=upstream, _stop=threading.Event())
    lines: queue.Queue[object] = queue.Queue()
    IngestWorker._read(reader, None, "token", lines)  # type: ignore[arg-type]
    items = []
    while (item := lines.get_nowait()) is not _END:
        items.append(item)
    assert all(isinstance(item, list) and len(item) <= QUEUE_SLICE for item in items)
    assert sum(len(item) for item in items) == 1050  # nothing lost or repeated by slicing
    assert len(items) == 11
