"""`triggerline smtp-sink`: an aiosmtpd SMTP sink on loopback with run-time fault injection.

Every accepted message is kept in memory (for test assertions) and, given a maildir, written
as an `.eml` file; given a journal, one line per message records when it was accepted, its
Message-ID and recipients (benchmarks count and time emails from it). Faults are set per
recipient (or `*` for all) and per stage: a reply such as `451 4.3.0 Try again later` at MAIL,
RCPT or DATA, a slow reply, or `drop`: keep the message, then close the connection before
replying, the ambiguous window an idempotent sender must survive. A fault fires a number of
times, for a number of seconds, or until cleared; as a process, the sink takes faults over
HTTP (`--control-port`, services/simulator/sink_control.py).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import logging
import re
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

log = logging.getLogger(__name__)

FaultStage = Literal["mail", "rcpt", "data", "drop"]
ANY = "*"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


@dataclass
class Fault:
    """One injected misbehaviour; `times` counts down to zero, None fires for ever; `seconds`
    ends it that long after it is set (None: never)."""

    stage: FaultStage
    reply: str | None = None
    delay: float = 0.0
    times: int | None = None
    seconds: float | None = None
    _ends: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.seconds is not None:
            self._ends = time.monotonic() + self.seconds

    def fire(self) -> bool:
        if self._ends is not None and time.monotonic() >= self._ends:
            return False
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True


@dataclass(frozen=True)
class ReceivedMail:
    """One message the sink accepted (or kept before dropping the connection)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    message_id: str | None
    received_at: datetime
    path: Path | None = None
    dropped: bool = False

    def parsed(self) -> EmailMessage:
        message = BytesParser(policy=policy.default).parsebytes(self.content)
        assert isinstance(message, EmailMessage)
        return message


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (aiosmtpd needs a concrete port to self-check)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def header_value(content: bytes, name: str) -> str | None:
    """The first `name` header of a message, unfolded; None when absent.

    A scan of the header block only: the `email` parser costs more than the rest of the SMTP
    exchange, and the sink must not be what limits a throughput benchmark.
    """
    end = content.find(b"\r\n\r\n")
    head = content if end < 0 else content[: end + 2]
    if not head.startswith(b"\r\n"):
        head = b"\r\n" + head
    start = head.lower().find(b"\r\n" + name.lower().encode("ascii") + b":")
    if start < 0:
        return None
    start += len(name) + 3
    stop = head.find(b"\r\n", start)
    while stop >= 0 and head[stop + 2 : stop + 3] in (b" ", b"\t"):
        stop = head.find(b"\r\n", stop + 2)  # a folded header goes on in the next line
    value = head[start : stop if stop >= 0 else len(head)].replace(b"\r\n", b"")
    return value.decode("utf-8", "replace").strip()


def eml_name(counter: int, message_id: str | None) -> str:
    """`000042-<safe message id>.eml`: unique even when a Message-ID arrives twice."""
    safe = _UNSAFE.sub("_", (message_id or "no-message-id").strip("<> "))[:120]
    return f"{counter:06d}-{safe}.eml"


@dataclass
class _State:
    messages: list[ReceivedMail] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    sessions: int = 0
    accepted: int = 0  # messages stored, dropped ones included, whether or not kept in memory
    dropped: int = 0
    waits: list[int] = field(default_factory=list)  # the counts `wait_for` callers wait for
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class _Handler:
    """aiosmtpd hooks; they run on the controller's event loop thread."""

    def __init__(
        self,
        state: _State,
        maildir: Path | None,
        pipelining: bool = True,
        journal: IO[str] | None = None,
        keep: bool = True,
    ) -> None:
        self._state = state
        self._maildir = maildir
        self._pipelining = pipelining
        self._journal = journal
        self._keep = keep
        self._counter = itertools.count(1)

    def _fault(self, stage: FaultStage, recipients: list[str]) -> Fault | None:
        with self._state.lock:
            for recipient in [*recipients, ANY]:
                for fault in self._state.faults.get(recipient.lower(), []):
                    if fault.stage == stage and fault.fire():
                        return fault
        return None

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        # aiosmtpd reads and answers commands strictly in order, so it can announce command
        # pipelining (RFC 2920), as real servers do; senders then take their pipelined path.
        session.host_name = hostname
        if not self._pipelining:
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self._fault("mail", [])
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.reply:
                return fault.reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self._fault("rcpt", [address])
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.reply:
                return fault.reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        recipients = list(envelope.rcpt_tos)
        drop = self._fault("drop", recipients)
        fault = None if drop is not None else self._fault("data", recipients)
        if fault is not None:
            await asyncio.sleep(fault.delay)
            if fault.reply:
                return fault.reply
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        stored = self._store(envelope.mail_from or "", recipients, content, drop is not None)
        if drop is not None:
            await asyncio.sleep(drop.delay)
            assert server.transport is not None
            server.transport.close()  # the reply never reaches the client
            return "250 OK (never seen by the client)"
        return f"250 OK queued as {stored}"

    def _store(self, mail_from: str, recipients: list[str], content: bytes, dropped: bool) -> str:
        message_id = header_value(content, "Message-ID")
        number = next(self._counter)
        path = None
        if self._maildir is not None:
            path = self._maildir / eml_name(number, message_id)
            # As a mailbox keeps it: the envelope sender (the VERP return path) on top
            path.write_bytes(b"Return-Path: <" + mail_from.encode() + b">\r\n" + content)
        mail = ReceivedMail(
            mail_from=mail_from,
            rcpt_tos=tuple(recipients),
            content=content,
            message_id=str(message_id) if message_id else None,
            received_at=datetime.now(UTC),
            path=path,
            dropped=dropped,
        )
        if self._journal is not None:
            # Acceptance time in epoch milliseconds (microsecond digits), tab-separated.
            self._journal.write(
                f"{mail.received_at.timestamp() * 1000:.3f}\t{mail.message_id or ''}\t"
                f"{','.join(recipients)}\t{int(dropped)}\n"
            )
            self._journal.flush()
        with self._state.changed:
            if self._keep:
                self._state.messages.append(mail)
            self._state.accepted += 1
            self._state.dropped += int(dropped)
            # Wake waiters only when one of them is satisfied: a wake-up per message costs the
            # sink a thread switch per message, which caps a throughput benchmark.
            if self._state.waits and self._state.accepted >= min(self._state.waits):
                self._state.changed.notify_all()
        log.info(
            "mail %s from %s to %s, %d bytes%s",
            mail.message_id,
            mail_from,
            ",".join(recipients),
            len(content),
            " (connection dropped before the reply)" if dropped else "",
        )
        return f"{number:06d}"


class _Authenticator:
    """Accepts one login and password (aiosmtpd's authenticator hook)."""

    def __init__(self, login: str, password: str) -> None:
        self._login = login.encode()
        self._password = password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and hmac.compare_digest(data.login, self._login)
            and hmac.compare_digest(data.password, self._password)
        )
        return AuthResult(success=ok, handled=False)


class _CountingController(Controller):
    def __init__(self, handler: _Handler, state: _State, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._state = state

    def factory(self) -> SMTP:
        with self._state.lock:
            self._state.sessions += 1
        return super().factory()  # type: ignore[no-untyped-call,no-any-return]  # untyped


class SmtpSink:
    """An SMTP server on loopback for tests and local runs.

    Use as a context manager, or `start()` / `stop()`. `messages` lists what was accepted;
    `set_fault` and `clear_faults` change behaviour while it runs. `pipelining=False` stops
    it announcing PIPELINING, so senders take their one-command-at-a-time path.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        maildir: Path | None = None,
        pipelining: bool = True,
        tls_context: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
        journal: Path | None = None,
        keep: bool = True,
    ):
        """`tls_context` offers STARTTLS and requires it; `login` requires AUTH with that pair.
        `journal` appends a line per message; `keep=False` keeps no message in memory (a long
        run then only counts them)."""
        self.host = host
        self.port = port or free_port(host)
        self._state = _State()
        self._baseline = 0
        if maildir is not None:
            maildir.mkdir(parents=True, exist_ok=True)
        self._journal = journal.open("a", encoding="utf-8") if journal is not None else None
        self._controller = _CountingController(
            _Handler(self._state, maildir, pipelining, self._journal, keep),
            self._state,
            hostname=host,
            port=self.port,
            ready_timeout=10.0,
            data_size_limit=10 * 1024 * 1024,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
            auth_required=login is not None,
            auth_require_tls=tls_context is not None,
            authenticator=_Authenticator(*login) if login is not None else None,
        )

    def start(self) -> SmtpSink:
        self._controller.start()
        with self._state.lock:
            # aiosmtpd's own readiness probe is a session too; it is not a client's.
            self._baseline = self._state.sessions
        return self

    def stop(self) -> None:
        self._controller.stop()
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def set_fault(self, recipient: str, fault: Fault) -> None:
        """Add a fault for one recipient address, or `*` for every recipient."""
        with self._state.lock:
            self._state.faults.setdefault(recipient.lower(), []).append(fault)

    def clear_faults(self, recipient: str | None = None) -> None:
        with self._state.lock:
            if recipient is None:
                self._state.faults.clear()
            else:
                self._state.faults.pop(recipient.lower(), None)

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._state.lock:
            return list(self._state.messages)

    def counts(self) -> dict[str, int]:
        """Messages accepted (dropped ones included), dropped, and SMTP sessions so far."""
        with self._state.lock:
            return {
                "accepted": self._state.accepted,
                "dropped": self._state.dropped,
                "sessions": self._state.sessions - self._baseline,
            }

    @property
    def sessions(self) -> int:
        """SMTP connections accepted so far."""
        with self._state.lock:
            return self._state.sessions - self._baseline

    def clear(self) -> None:
        with self._state.lock:
            self._state.messages.clear()
            self._state.accepted = self._state.dropped = 0

    def wait_for(self, count: int, timeout: float = 30.0) -> list[ReceivedMail]:
        """Wait until at least `count` messages arrived or the timeout; returns what arrived."""
        end = time.monotonic() + timeout
        with self._state.changed:
            self._state.waits.append(count)
            try:
                while self._state.accepted < count:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._state.changed.wait(left)
            finally:
                self._state.waits.remove(count)
            return list(self._state.messages)

    def count_by_message_id(self) -> Counter[str | None]:
        """How often each Message-ID arrived: any count above one is a duplicate email."""
        return Counter(mail.message_id for mail in self.messages)

    def for_recipient(self, address: str) -> list[ReceivedMail]:
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_tos)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="triggerline smtp-sink", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument(
        "--maildir", default="var/mail", help="folder of .eml files; empty: write none"
    )
    parser.add_argument("--journal", type=Path, help="append one line per accepted message here")
    parser.add_argument(
        "--control-port", type=int, help="serve fault controls and counts on this loopback port"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s smtp-sink: %(message)s")
    # aiosmtpd logs every command at INFO; one line per mail is ours.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    from services.simulator.sink_control import serve_control  # it builds on this module

    maildir = Path(args.maildir) if args.maildir else None
    # A process keeps no message in memory: it would grow with every email of a long run.
    with SmtpSink(args.host, args.port, maildir, journal=args.journal, keep=False) as sink:
        log.info("listening on %s:%d, writing to %s", args.host, args.port, maildir)
        control = serve_control(sink, args.control_port) if args.control_port else None
        stop.wait()
        if control is not None:
            control.shutdown()
    return 0
