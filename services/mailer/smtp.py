"""SmtpPool: every message of a batch in flight at once over a few SMTP connections, one thread.

The connections are set up (EHLO, STARTTLS, AUTH) with smtplib, then driven without blocking
from one selector loop: each takes the next message as soon as its last transaction ended, so
the server always has `size` transactions to work on and this process never switches threads
to hear a reply (with a sending thread per connection, handing the interpreter lock back and
forth cost more CPU than the messages themselves).

Each transaction goes command by command (MAIL, RCPT, DATA, message, final reply) so a failure
is known by its stage: a connection lost before the final dot sent nothing and may be retried,
a connection lost while waiting for the final reply is `DeliveryUnknown`. A server that
announces PIPELINING (RFC 2920) gets MAIL, RCPT and DATA in one write and answers them in
order, which halves the round trips of every message; the replies are still judged one stage
at a time.
"""

from __future__ import annotations

import logging
import re
import selectors
import smtplib
import socket
import ssl
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from pydantic import SecretStr

from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected, Stage
from services.mailer.message import OutgoingMessage
from services.mailer.rules.suppression import enhanced_status

log = logging.getLogger(__name__)

_LEADING_DOT = re.compile(rb"(?m)^\.")
# A bare mailbox (no brackets, spaces or controls) can go on the wire as `<addr>` as it is.
_BARE_MAILBOX = re.compile(r"[^<>\s\x00-\x1f\x7f]+@[^<>\s\x00-\x1f\x7f]+")
# Longest reply accepted (smtplib's line limit); more without an end is not an SMTP server.
_MAX_REPLY = 8192
_READ_SIZE = 65536


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to connect; the password is revealed only to `login`."""

    host: str
    port: int
    timeout: timedelta
    size: int
    starttls: bool = False
    ca_file: str = ""  # the CA of a private relay's certificate; empty: the system's CAs
    username: str = ""
    password: SecretStr = field(default_factory=lambda: SecretStr(""))


def reply_error(code: int, text: bytes | str, stage: Stage) -> SmtpDeferred | SmtpRejected:
    """The error kind of a non-success reply: 4xx (and oddities) defer, 5xx reject.

    421 and `4.7.x` (rate limits, policy back-off) concern the server connection rather than the
    recipient, so the pool backs off instead of counting an attempt against the address.
    """
    reply = _text(text)
    enhanced = enhanced_status(reply)
    summary = f"SMTP {code} at {stage.upper()}: {reply.strip()[:300]}"
    if code >= 500:
        return SmtpRejected(summary, code=code, enhanced=enhanced, stage=stage)
    connection_level = code == 421 or (enhanced or "").startswith("4.7.")
    return SmtpDeferred(summary, code=code, stage=stage, connection_level=connection_level)


def wire_bytes(message: OutgoingMessage) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, terminated by `.` alone."""
    data = message.as_bytes()
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


@dataclass(frozen=True)
class Envelope:
    """One message as the wire carries it: the MAIL and RCPT paths and the DATA payload."""

    sender: str
    recipient: str
    payload: bytes

    @classmethod
    def of(cls, message: OutgoingMessage, sender: str, recipient: str) -> Envelope:
        """Raises `ValueError` for an address that could inject a command."""
        return cls(_path(sender), _path(recipient), wire_bytes(message))


SendError = SmtpDeferred | SmtpRejected | DeliveryUnknown


@dataclass(frozen=True)
class Handed:
    """How one message's transaction ended: the server's final reply text, or the error."""

    index: int
    reply: str | None
    error: SendError | None
    seconds: float


# What a connection waits for: the reply to one command, or to the message (after the dot).
Expect = Literal["mail", "rcpt", "data", "message", "rset"]


@dataclass
class _Job:
    index: int
    envelope: Envelope
    started: float = 0.0
    fresh_only: bool = False  # a pooled connection turned out closed: retry once on a new one
    refusal: SmtpDeferred | SmtpRejected | None = None  # the first refusal of a pipelined group


class _Session:
    """One open connection: buffers both ways, and the transaction it carries (if any)."""

    def __init__(self, sock: socket.socket, pipelining: bool) -> None:
        self.sock = sock
        self.pipelining = pipelining
        self.reused = False  # it has carried a transaction before this one
        self.closed = False
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.lines: list[bytes] = []  # a multi-line reply so far
        self.expect: deque[Expect] = deque()
        self.job: _Job | None = None
        self.deadline = 0.0
        self.registered = 0  # the selector events it is registered for

    @property
    def free(self) -> bool:
        """Open, with no transaction and nothing left to send or hear."""
        return not (self.closed or self.job or self.expect or self.outbox)

    def write(self, data: bytes) -> None:
        self.outbox += data
        self.flush()

    def flush(self) -> None:
        """Send what the socket takes now; the rest waits for it to be writable."""
        while self.outbox:
            try:
                sent = self.sock.send(self.outbox)
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            del self.outbox[:sent]

    def read(self) -> list[tuple[int, bytes]]:
        """The complete replies that arrived; `_Lost` if the server hung up or spoke nonsense."""
        while True:
            try:
                data = self.sock.recv(_READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                break
            if not data:
                raise _Lost("Connection unexpectedly closed")
            self.inbox += data
            pending = getattr(self.sock, "pending", None)  # TLS may hold decrypted bytes back
            if not (pending and pending()):
                break
        replies: list[tuple[int, bytes]] = []
        start = 0
        while (end := self.inbox.find(b"\n", start)) >= 0:
            line = bytes(self.inbox[start:end]).rstrip(b"\r")
            start = end + 1
            if not line[:3].isdigit():
                raise _Lost(f"not an SMTP reply: {line[:80]!r}")
            self.lines.append(line[4:].strip(b" \t"))
            if line[3:4] != b"-":
                replies.append((int(line[:3]), b"\n".join(self.lines)))
                self.lines = []
        del self.inbox[:start]
        if len(self.inbox) > _MAX_REPLY:
            raise _Lost("reply line too long")
        return replies

    def events(self) -> int:
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbox else 0)

    def close(self, polite: bool = False, timeout: float = 5.0) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            if polite:
                self.sock.settimeout(timeout)
                self.sock.sendall(b"QUIT\r\n")
                self.sock.recv(_READ_SIZE)
        except OSError:
            pass
        finally:
            self.sock.close()


class _Lost(Exception):
    """The connection can carry nothing more (closed, timed out, or not speaking SMTP)."""


class SmtpPool:
    """Up to `size` open connections, all driven at once by whoever calls `send_many`.

    Not thread-safe: one caller (the mailer's loop) sends at a time.
    """

    def __init__(self, options: SmtpOptions) -> None:
        self._options = options
        self._timeout = options.timeout.total_seconds()
        self._idle: list[_Session] = []
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
        self, envelopes: Sequence[Envelope], idle: float | None = None
    ) -> Iterator[Handed | None]:
        """Hand every envelope over, yielding each transaction's end as it comes, in any order.

        Yields `None` when `idle` seconds pass with no transaction ending, so the caller can
        save what it has meanwhile. A pooled connection the server has since closed fails at
        MAIL; that one case is retried once on a fresh connection, since nothing was sent. If
        no connection can be opened, every message left waiting gets that connect error.
        """
        waiting = deque(_Job(index, envelope) for index, envelope in enumerate(envelopes))
        busy: list[_Session] = []
        selector = selectors.DefaultSelector()
        cannot_connect: SmtpDeferred | None = None
        last_end = time.monotonic()
        try:
            while waiting or busy:
                ended: list[Handed] = []
                while waiting:
                    session, failure = self._session_for(waiting[0], len(busy), cannot_connect)
                    if failure is not None:
                        cannot_connect = failure
                        ended.append(_handed(waiting.popleft(), error=failure))
                    elif session is None:
                        break  # every connection is busy: the next reply frees one
                    else:
                        busy.append(session)
                        self._begin(session, waiting.popleft(), ended, waiting)
                if busy:
                    self._wait(selector, busy, ended, waiting, idle, last_end)
                    for session in list(busy):
                        if session.closed or session.free:
                            busy.remove(session)
                            if session.registered:
                                selector.unregister(session.sock)
                                session.registered = 0
                            if not session.closed:
                                self._release(session)
                yield from ended
                if ended:
                    last_end = time.monotonic()
                elif idle is not None and time.monotonic() - last_end >= idle:
                    last_end = time.monotonic()
                    yield None
        finally:
            for session in busy:  # abandoned mid-transaction: the server must not keep it
                session.close()
            selector.close()

    def close(self) -> None:
        """Quit every idle connection."""
        self._closed = True
        idle, self._idle = self._idle, []
        for session in idle:
            session.close(polite=True, timeout=self._timeout)

    def _wait(
        self,
        selector: selectors.BaseSelector,
        busy: list[_Session],
        ended: list[Handed],
        waiting: deque[_Job],
        idle: float | None,
        last_end: float,
    ) -> None:
        """One select over the busy connections, then whatever timed out."""
        live = [session for session in busy if not session.closed]
        if not live:
            return
        for session in live:
            if session.events() != session.registered:
                _register(selector, session)
        now = time.monotonic()
        timeout = max(0.0, min(session.deadline for session in live) - now)
        if idle is not None:
            timeout = min(timeout, max(0.0, last_end + idle - now))
        for key, mask in selector.select(timeout):
            self._on_ready(key.data, mask, ended, waiting)
        now = time.monotonic()
        for session in live:
            waits = session.expect or session.outbox
            if waits and not session.closed and session.deadline <= now:
                self._lose(session, "timed out", ended, waiting)

    def _session_for(
        self, job: _Job, busy: int, cannot_connect: SmtpDeferred | None
    ) -> tuple[_Session | None, SmtpDeferred | None]:
        """An idle connection, else a new one if there is room: (session, connect error).

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
            conn = self._connect()
        except SmtpDeferred as exc:
            return None, exc
        sock = conn.sock
        assert sock is not None  # smtplib connected it
        if conn.file is not None:
            conn.file.close()  # the session reads the socket itself from here
        conn.sock = conn.file = None
        sock.setblocking(False)
        return _Session(sock, conn.has_extn("pipelining")), None

    def _connect(self) -> smtplib.SMTP:
        options = self._options
        timeout = options.timeout.total_seconds()
        try:
            conn = smtplib.SMTP(options.host, options.port, timeout=timeout)
        except smtplib.SMTPConnectError as exc:
            raise SmtpDeferred(
                f"SMTP server {options.host}:{options.port} refused the session: "
                f"{exc.smtp_code} {_text(exc.smtp_error)[:200]}",
                code=exc.smtp_code,
                stage="connect",
                connection_level=True,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise SmtpDeferred(
                f"cannot connect to SMTP server {options.host}:{options.port}: {exc}",
                code=None,
                stage="connect",
                connection_level=True,
            ) from exc
        try:
            conn.ehlo()
            if options.starttls:
                conn.starttls(context=ssl.create_default_context(cafile=options.ca_file or None))
                conn.ehlo()
            if options.username:
                conn.login(options.username, options.password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            conn.close()
            # Never echo credentials; the server's code says enough.
            raise SmtpDeferred(
                f"SMTP AUTH refused ({exc.smtp_code}); check TRIGGERLINE_MAILER_SMTP_USERNAME "
                "and TRIGGERLINE_MAILER_SMTP_PASSWORD",
                code=exc.smtp_code,
                stage="connect",
                connection_level=True,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            conn.close()
            raise SmtpDeferred(
                f"SMTP session set-up with {options.host}:{options.port} failed: {exc}",
                code=None,
                stage="connect",
                connection_level=True,
            ) from exc
        self.connections_opened += 1
        return conn

    def _begin(
        self, session: _Session, job: _Job, ended: list[Handed], waiting: deque[_Job]
    ) -> None:
        job.started = job.started or time.monotonic()
        session.job = job
        envelope = job.envelope
        try:
            if session.pipelining:
                self._command(
                    session,
                    f"MAIL FROM:{envelope.sender}\r\nRCPT TO:{envelope.recipient}\r\nDATA\r\n",
                    "mail",
                    "rcpt",
                    "data",
                )
            else:
                self._command(session, f"MAIL FROM:{envelope.sender}\r\n", "mail")
        except OSError as exc:
            self._lose(session, str(exc), ended, waiting)

    def _command(self, session: _Session, text: str, *expect: Expect) -> None:
        session.expect.extend(expect)
        session.deadline = time.monotonic() + self._timeout
        session.write(text.encode("ascii"))

    def _on_ready(
        self, session: _Session, mask: int, ended: list[Handed], waiting: deque[_Job]
    ) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                session.flush()
            if mask & selectors.EVENT_READ:
                for code, text in session.read():
                    if not session.expect:
                        raise _Lost(f"unexpected reply {code}")
                    self._on_reply(session, session.expect.popleft(), code, text, ended)
        except (_Lost, OSError) as exc:
            self._lose(session, str(exc) or type(exc).__name__, ended, waiting)

    def _on_reply(
        self, session: _Session, stage: Expect, code: int, text: bytes, ended: list[Handed]
    ) -> None:
        job = session.job
        if stage == "rset":
            if code != 250:
                raise _Lost(f"RSET refused with {code}")
            return
        assert job is not None
        if stage == "message":
            if code == 250:
                reply = text.decode("utf-8", "replace").strip()[:300]
                self._end(session, _handed(job, reply=reply), ended)
            else:
                self._refused(session, reply_error(code, text, "data"), ended)
            return
        if code not in _ACCEPTED[stage] and job.refusal is None:
            job.refusal = reply_error(code, text, stage)
        if session.expect:
            return  # the rest of a pipelined group is still to come
        if job.refusal is not None:
            if code == 354:  # a server that accepts DATA anyway: what follows would be text
                session.close()
                self._end(session, _handed(job, error=job.refusal), ended)
            else:
                self._refused(session, job.refusal, ended)
        elif stage == "mail":
            self._command(session, f"RCPT TO:{job.envelope.recipient}\r\n", "rcpt")
        elif stage == "rcpt":
            self._command(session, "DATA\r\n", "data")
        else:
            session.expect.append("message")
            session.deadline = time.monotonic() + self._timeout
            session.write(job.envelope.payload)

    def _refused(
        self, session: _Session, error: SmtpDeferred | SmtpRejected, ended: list[Handed]
    ) -> None:
        """The server said no: that message ends, and the connection is reset for the next."""
        assert session.job is not None
        self._end(session, _handed(session.job, error=error), ended)
        if error.code == 421:  # the server is closing this connection
            session.close()
        else:
            self._command(session, "RSET\r\n", "rset")

    def _lose(self, session: _Session, why: str, ended: list[Handed], waiting: deque[_Job]) -> None:
        """The connection is gone; its transaction ends by the stage it had reached."""
        job = session.job
        stage = session.expect[0] if session.expect else "mail"
        unsent = bool(session.outbox)
        session.close()
        session.job = None
        log.debug("SMTP connection lost while waiting for %s: %s", stage, why)
        if job is None:
            return  # it was between messages (a RSET): nothing is lost
        error: SendError
        if stage == "message":
            if unsent:  # the final dot never left: the server holds no message
                error = _connection_lost(why, "data")
            else:
                error = DeliveryUnknown(f"connection lost awaiting the reply to the message: {why}")
        elif job.refusal is not None:
            error = job.refusal  # a refusal already read says more than the lost connection
        elif stage == "mail" and session.reused and not job.fresh_only:
            job.fresh_only = True
            waiting.appendleft(job)
            return
        else:
            error = _connection_lost(why, "mail" if stage == "rset" else stage)
        ended.append(_handed(job, error=error))

    @staticmethod
    def _end(session: _Session, handed: Handed, ended: list[Handed]) -> None:
        session.job = None
        session.reused = True
        ended.append(handed)

    def _release(self, session: _Session) -> None:
        if self._closed or len(self._idle) >= self._options.size:
            session.close(polite=True, timeout=self._timeout)
        else:
            self._idle.append(session)


_ACCEPTED: dict[Expect, tuple[int, ...]] = {"mail": (250,), "rcpt": (250, 251), "data": (354,)}


def _handed(job: _Job, reply: str | None = None, error: SendError | None = None) -> Handed:
    seconds = time.monotonic() - job.started if job.started else 0.0
    return Handed(job.index, reply, error, seconds)


def _register(selector: selectors.BaseSelector, session: _Session) -> None:
    events = session.events()
    if session.registered:
        selector.modify(session.sock, events, session)
    else:
        selector.register(session.sock, events, session)
    session.registered = events


def _path(address: str) -> str:
    """An address as MAIL or RCPT sends it: `<addr>`, quoted as smtplib would if need be."""
    path = f"<{address}>" if _BARE_MAILBOX.fullmatch(address) else smtplib.quoteaddr(address)
    if "\r" in path or "\n" in path:  # as smtplib's putcmd refuses: no command injection
        raise ValueError(f"address contains prohibited newline characters: {path!r}")
    return path


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _connection_lost(why: str, stage: Stage) -> SmtpDeferred:
    return SmtpDeferred(
        f"SMTP connection lost at {stage.upper()} (nothing was sent): {why}",
        code=None,
        stage=stage,
        connection_level=True,
    )
