"""SmtpPool: every message of a batch in flight at once over a few SMTP connections, one thread.

The connections are set up with smtplib (`connect`), then driven without blocking from one
selector loop: each takes the next message as soon as its last transaction ended, so the
server always has `size` transactions to work on and this process never switches threads to
hear a reply (with a sending thread per connection, handing the interpreter lock back and
forth cost more CPU than the messages themselves). What each reply means is the
`conversation`'s to say; this module moves the bytes.

With `before_data`, every transaction stops at the server's 354; after each round of replies
the pool asks `before_data` once for all the messages then waiting (the mailer records them as
being handed over) and sends those it allows; the others' connections are dropped before the
message, which sends nothing.
"""

from __future__ import annotations

import logging
import selectors
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass

from services.mailer.errors import SmtpDeferred
from services.mailer.message import OutgoingMessage
from services.mailer.smtp.connect import SmtpOptions, open_connection
from services.mailer.smtp.connection import Connection, Job
from services.mailer.smtp.conversation import NOTHING, Ending, Turn
from services.mailer.smtp.envelope import Envelope
from services.mailer.smtp.replies import ConnectionLost, SendError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Handed:
    """How one message's transaction ended: the server's final reply text, or the error."""

    index: int
    reply: str | None
    error: SendError | None
    seconds: float


class SmtpPool:
    """Up to `size` open connections, all driven at once by whoever calls `send_many`.

    Not thread-safe: one caller (the mailer's loop) sends at a time.
    """

    def __init__(self, options: SmtpOptions) -> None:
        self._options = options
        self._timeout = options.timeout.total_seconds()
        self._idle: list[Connection] = []
        self._closed = False
        self.connections_opened = 0

    def send(self, message: OutgoingMessage, sender: str, recipient: str) -> str:
        """Hand one message over; returns the server's final reply text or raises its error."""
        envelope = Envelope.of(message, sender, recipient)
        (handed,) = [handed for handed in self.send_many([envelope]) if handed is not None]
        if handed.error is not None:
            raise handed.error
        return handed.reply or ""

    def send_many(
        self,
        envelopes: Sequence[Envelope],
        idle: float | None = None,
        before_data: Callable[[list[int]], Collection[int]] | None = None,
    ) -> Iterator[Handed | None]:
        """Hand every envelope over, yielding each transaction's end as it comes, in any order.

        Yields `None` when `idle` seconds pass with no transaction ending, so the caller can
        save what it has meanwhile. If no connection can be opened, every message left waiting
        gets that connect error. `before_data(indexes)` is asked before the messages at those
        indexes of `envelopes` go out, and answers those that may; the others end unsent.
        """
        waiting = deque(Job(index, envelope) for index, envelope in enumerate(envelopes))
        busy: list[Connection] = []
        selector = selectors.DefaultSelector()
        cannot_connect: SmtpDeferred | None = None
        last_end = time.monotonic()
        try:
            while waiting or busy:
                ended: list[Handed] = []
                while waiting:
                    conn, failure = self._connection_for(waiting[0], len(busy), cannot_connect)
                    if failure is not None:
                        cannot_connect = failure
                        ended.append(_handed(waiting.popleft(), Ending(error=failure)))
                    elif conn is None:
                        break  # every connection is busy: the next reply frees one
                    else:
                        busy.append(conn)
                        hold = before_data is not None
                        self._begin(conn, waiting.popleft(), ended, waiting, hold)
                if busy:
                    self._wait(selector, busy, ended, waiting, idle, last_end)
                    if before_data is not None:
                        self._release_held(busy, before_data, ended, waiting)
                    self._put_back(selector, busy)
                yield from ended
                if ended:
                    last_end = time.monotonic()
                elif idle is not None and time.monotonic() - last_end >= idle:
                    last_end = time.monotonic()
                    yield None
        finally:
            for conn in busy:  # abandoned mid-transaction: the server must not keep it
                conn.close()
            selector.close()

    def close(self) -> None:
        """Quit every idle connection."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close(polite=True, timeout=self._timeout)

    def _wait(
        self,
        selector: selectors.BaseSelector,
        busy: list[Connection],
        ended: list[Handed],
        waiting: deque[Job],
        idle: float | None,
        last_end: float,
    ) -> None:
        """One select over the busy connections, then whatever timed out."""
        live = [conn for conn in busy if not conn.closed]
        if not live:
            return
        for conn in live:
            if conn.events() != conn.registered:
                _register(selector, conn)
        now = time.monotonic()
        timeout = max(0.0, min(conn.deadline for conn in live) - now)
        if idle is not None:
            timeout = min(timeout, max(0.0, last_end + idle - now))
        for key, mask in selector.select(timeout):
            self._on_ready(key.data, mask, ended, waiting)
        now = time.monotonic()
        for conn in live:
            waits = conn.conversation.expect or conn.outbox
            if waits and not conn.closed and conn.deadline <= now:
                self._lose(conn, "timed out", ended, waiting)

    def _release_held(
        self,
        busy: list[Connection],
        before_data: Callable[[list[int]], Collection[int]],
        ended: list[Handed],
        waiting: deque[Job],
    ) -> None:
        """Send the messages the server awaits that `before_data` allows; drop the others."""
        held = [(conn, conn.job.index) for conn in busy if conn.held and conn.job is not None]
        if not held:
            return
        allowed = before_data([index for _, index in held])
        for conn, index in held:
            if index not in allowed:  # the final dot never leaves: the server keeps nothing
                self._lose(conn, "the handover could not be recorded", ended, waiting)
                continue
            try:
                self._apply(conn, conn.conversation.release(), ended, waiting)
            except OSError as exc:
                self._lose(conn, str(exc), ended, waiting)

    def _put_back(self, selector: selectors.BaseSelector, busy: list[Connection]) -> None:
        """Connections done with their transaction leave `busy`: back to idle, or closed."""
        for conn in list(busy):
            if conn.closed or conn.free:
                busy.remove(conn)
                if conn.registered:
                    selector.unregister(conn.sock)
                    conn.registered = 0
                if not conn.closed:
                    self._release(conn)

    def _connection_for(
        self, job: Job, busy: int, cannot_connect: SmtpDeferred | None
    ) -> tuple[Connection | None, SmtpDeferred | None]:
        """An idle connection, else a new one if there is room: (connection, connect error).

        After a failed connect no other is tried in the same call: messages wait for the
        connections already open, and fail with that error once none is left.
        """
        if self._idle and not job.fresh_only:
            return self._idle.pop(), None
        if cannot_connect is not None:
            return None, (cannot_connect if busy == 0 or job.fresh_only else None)
        if busy + len(self._idle) >= self._options.size:
            if not (job.fresh_only and self._idle):
                return None, None
            self._idle.pop().close(polite=True, timeout=self._timeout)  # room for a new one
        try:
            conn = open_connection(self._options)
        except SmtpDeferred as exc:
            return None, exc
        self.connections_opened += 1
        return conn, None

    def _begin(
        self, conn: Connection, job: Job, ended: list[Handed], waiting: deque[Job], hold: bool
    ) -> None:
        job.started = job.started or time.monotonic()
        conn.job = job
        turn = conn.conversation.begin(job.envelope, retried=job.fresh_only, hold=hold)
        try:
            self._apply(conn, turn, ended, waiting)
        except OSError as exc:
            self._lose(conn, str(exc), ended, waiting)

    def _on_ready(
        self, conn: Connection, mask: int, ended: list[Handed], waiting: deque[Job]
    ) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                conn.flush()
            if mask & selectors.EVENT_READ:
                for code, text in conn.read():
                    turn = conn.conversation.on_reply(code, text)
                    if turn is not NOTHING:
                        self._apply(conn, turn, ended, waiting)
                    if conn.closed:
                        break  # what else it said no longer matters
        except (ConnectionLost, OSError) as exc:
            self._lose(conn, str(exc) or type(exc).__name__, ended, waiting)

    def _lose(self, conn: Connection, why: str, ended: list[Handed], waiting: deque[Job]) -> None:
        expect = conn.conversation.expect
        log.debug(
            "SMTP connection lost while waiting for %s: %s", expect[0] if expect else "mail", why
        )
        turn = conn.conversation.on_lost(why, unsent=bool(conn.outbox))
        self._apply(conn, turn, ended, waiting)

    def _apply(
        self, conn: Connection, turn: Turn, ended: list[Handed], waiting: deque[Job]
    ) -> None:
        """Do what the conversation says: end or requeue the job, close, or write."""
        send, ending, close, again, _ = turn  # a held turn waits for `_release_held`
        job = conn.job
        if job is not None and (ending is not None or again):
            conn.job = None
            if ending is not None:
                ended.append(_handed(job, ending))
            else:
                job.fresh_only = True
                waiting.appendleft(job)
        if close:
            conn.close()
        elif send:
            conn.deadline = time.monotonic() + self._timeout
            conn.write(send)

    def _release(self, conn: Connection) -> None:
        if self._closed or len(self._idle) >= self._options.size:
            conn.close(polite=True, timeout=self._timeout)
        else:
            self._idle.append(conn)


def _handed(job: Job, ending: Ending) -> Handed:
    seconds = time.monotonic() - job.started if job.started else 0.0
    return Handed(job.index, ending.reply, ending.error, seconds)


def _register(selector: selectors.BaseSelector, conn: Connection) -> None:
    events = conn.events()
    if conn.registered:
        selector.modify(conn.sock, events, conn)
    else:
        selector.register(conn.sock, events, conn)
    conn.registered = events
