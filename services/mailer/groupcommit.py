"""Group commit: small writes of many threads share a transaction; each caller waits for its own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    item: T
    woken: threading.Event = field(default_factory=threading.Event)
    done: bool = False  # written, or failed with `error`; otherwise woken to write
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    """`submit` returns once the item is written, or raises what writing it raised.

    The first caller to find no write under way becomes the writer: it takes everything queued
    so far (its own item included) and hands it to `write` as one batch, while later callers
    queue behind it. When it is done it wakes the callers of its batch, and the first caller
    still queued, which writes the next batch. So no item waits for a timer, no thread is
    dedicated to writing, each waiting thread is woken exactly once, and on SQLite only one
    transaction at a time asks for the write lock.
    """

    def __init__(self, write: Callable[[Sequence[T]], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._queue: list[_Pending[T]] = []
        self._writing = False

    def submit(self, item: T) -> None:
        pending = _Pending(item)
        with self._lock:
            self._queue.append(pending)
            lead = not self._writing
            self._writing = True
        if not lead:
            pending.woken.wait()
        if not pending.done:  # this caller writes the next batch, its own item included
            self._write_batch()
        if pending.error is not None:
            raise pending.error

    def _write_batch(self) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        error: BaseException | None = None
        try:
            self._write([member.item for member in batch])
        except BaseException as exc:  # every caller of the batch learns its write failed
            error = exc
        with self._lock:
            successor = self._queue[0] if self._queue else None
            self._writing = successor is not None
        for member in batch:
            member.done, member.error = True, error
            member.woken.set()
        if successor is not None:
            successor.woken.set()
