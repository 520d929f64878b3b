"""aiosmtpd hooks of the SMTP sink: inject faults, store accepted mail, check a login.

The hooks run on the controller's event loop thread; `SinkState` is what they share, under its
lock, with the `SmtpSink` that tests and benchmarks read.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services.simulator.sink_faults import ANY, Fault, FaultStage
from services.simulator.sink_mail import ReceivedMail, eml_name, header_value

log = logging.getLogger(__name__)


@dataclass
class SinkState:
    """Received mail, faults and counters of one sink."""

    messages: list[ReceivedMail] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    sessions: int = 0
    accepted: int = 0  # messages stored, dropped ones included, whether or not kept in memory
    dropped: int = 0
    lost: int = 0  # messages whose data came in and that were neither kept nor answered
    waits: list[int] = field(default_factory=list)  # the counts `wait_for` callers wait for
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)


class SinkHandler:
    """aiosmtpd hooks; they run on the controller's event loop thread."""

    def __init__(
        self,
        state: SinkState,
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
        lose = self._fault("lose", recipients)
        if lose is not None:
            await asyncio.sleep(lose.delay)
            with self._state.changed:
                self._state.lost += 1
            log.info("sink lost a message to %s (connection closed after the data)", recipients)
            assert server.transport is not None
            server.transport.close()  # neither kept nor answered
            return "451 4.3.0 never seen by the client"
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


class SinkAuthenticator:
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
