"""Group commit: small writes of many threads share a transaction; each caller waits for its own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Ticket(Generic[T]):
    """One submitted item; `done` once its batch was written, or failed with `error`."""

    item: T
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[T]):
    """`submit` returns once the item is written, or raises what writing it raised.

    The first caller to find no write under way becomes the writer: it writes everything queued
    so far (its own item included) as one batch, and goes on with whatever queued up meanwhile
    until the queue is empty, while later callers only queue. So no item waits for a timer, no
    thread is dedicated to writing, and on SQLite only one transaction at a time asks for the
    write lock. `submit_nowait` queues without waiting (a caller that has more to do, such as a
    sending thread, goes on with it) and `wait` collects the result later; waiting callers are
    woken only when a batch ends, and only if someone waits.
    """

    def __init__(self, write: Callable[[Sequence[T]], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._written = threading.Condition(self._lock)
        self._queue: list[Ticket[T]] = []
        self._writing = False
        self._waiters = 0

    def submit(self, item: T) -> None:
        self.wait(self.submit_nowait(item))

    def submit_nowait(self, item: T) -> Ticket[T]:
        """Queue the item; if no write is under way, write it (and what queues behind) now."""
        ticket = Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            if self._writing:
                return ticket  # the writer under way takes it in its next batch
            self._writing = True
        self._drain()
        return ticket

    def wait(self, ticket: Ticket[T]) -> None:
        """Return once the ticket's item is written; raise what writing its batch raised."""
        with self._lock:
            self._waiters += 1
            try:
                while not ticket.done:
                    self._written.wait()
            finally:
                self._waiters -= 1
        if ticket.error is not None:
            raise ticket.error

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue, []
                if not batch:
                    self._writing = False
                    return
            error: BaseException | None = None
            try:
                self._write([ticket.item for ticket in batch])
            except BaseException as exc:  # every caller of the batch learns its write failed
                error = exc
            with self._lock:
                for ticket in batch:
                    ticket.done, ticket.error = True, error
                if self._waiters:
                    self._written.notify_all()
