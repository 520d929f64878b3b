"""The hand-off between a worker's reader thread and its writer: bounded in bytes.

A count of envelopes bounds nothing when one envelope may be a megabyte: the reader blocks once
`max_bytes` wait unwritten, which pushes back on upstream through TCP, whatever the sizes.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class Closed(Exception):
    """The writer is gone: the reader must stop."""


class LineBuffer:
    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: deque[tuple[object, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._ready = threading.Condition()

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, item: object, size: int) -> None:
        """Add an item; blocks while the buffer is over its bound (one item always fits)."""
        with self._ready:
            while self._bytes and self._bytes + size > self._max and not self._closed:
                self._ready.wait(0.5)
            if self._closed:
                raise Closed()
            self._items.append((item, size))
            self._bytes += size
            self._ready.notify_all()

    def get(self, timeout: float) -> object | None:
        """The oldest item, or `None` after `timeout` seconds without one."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._ready.wait(left)
            item, size = self._items.popleft()
            self._bytes -= size
            self._ready.notify_all()
            return item

    def close(self) -> None:
        """Release a reader blocked in `put`; it then stops."""
        with self._ready:
            self._closed = True
            self._items.clear()
            self._bytes = 0
            self._ready.notify_all()
