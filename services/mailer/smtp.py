"""SmtpPool: reusable smtplib connections with timeouts, STARTTLS and AUTH; replies become errors.

Each SMTP transaction is driven command by command (MAIL, RCPT, DATA, body, final reply) so a
failure is known by its stage: a connection lost before the final dot sent nothing and may be
retried, a connection lost while waiting for the final reply is `DeliveryUnknown`. A server
that announces PIPELINING (RFC 2920) gets MAIL, RCPT and DATA in one write and answers them in
order, which halves the round trips (and the system calls on both sides) of every message;
the replies are still read and judged one stage at a time.
"""

from __future__ import annotations

import logging
import queue
import re
import smtplib
import ssl
import threading
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import SecretStr

from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected, Stage
from services.mailer.message import OutgoingMessage
from services.mailer.rules.suppression import enhanced_status

log = logging.getLogger(__name__)

_LEADING_DOT = re.compile(rb"(?m)^\.")
# A bare mailbox (no brackets, spaces or controls) can go on the wire as `<addr>` as it is.
_BARE_MAILBOX = re.compile(r"[^<>\s\x00-\x1f\x7f]+@[^<>\s\x00-\x1f\x7f]+")


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to connect; the password is revealed only to `login`."""

    host: str
    port: int
    timeout: timedelta
    size: int
    starttls: bool = False
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


class SmtpPool:
    """Up to `size` open connections, handed to one sending thread at a time."""

    def __init__(self, options: SmtpOptions) -> None:
        self._options = options
        self._idle: queue.LifoQueue[smtplib.SMTP] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._closed = False
        self.connections_opened = 0

    def send(self, message: OutgoingMessage, sender: str, recipient: str) -> str:
        """Hand one message over; returns the server's final reply text.

        A pooled connection the server has since closed fails at MAIL; that one case is retried
        once on a fresh connection, since nothing can have been sent.
        """
        payload = wire_bytes(message)
        conn, reused = self._acquire()
        try:
            reply = self._transaction(conn, sender, recipient, payload)
        except _StaleConnection as stale:
            self._discard(conn)
            if not reused:
                raise stale.error from None
            conn, _ = self._acquire(fresh=True)
            try:
                reply = self._transaction(conn, sender, recipient, payload)
            except _StaleConnection as again:
                self._discard(conn)
                raise again.error from None
            except BaseException:
                self._discard(conn)
                raise
        except (SmtpDeferred, SmtpRejected) as exc:
            self._reset_or_discard(conn, keep=exc.code != 421)
            raise
        except BaseException:
            self._discard(conn)
            raise
        self._release(conn)
        return reply

    def close(self) -> None:
        """Quit every idle connection; connections in use are closed when handed back."""
        with self._lock:
            self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            self._discard(conn, polite=True)

    def _transaction(self, conn: smtplib.SMTP, sender: str, recipient: str, payload: bytes) -> str:
        if conn.has_extn("pipelining"):
            self._pipelined_envelope(conn, sender, recipient)
            return self._message(conn, payload)
        try:
            code, text = _command(conn, "MAIL FROM:", sender)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _StaleConnection(_connection_lost(exc, "mail")) from exc
        if code != 250:
            raise reply_error(code, text, "mail")
        stage: Stage = "rcpt"
        try:
            code, text = _command(conn, "RCPT TO:", recipient)
            if code not in (250, 251):
                raise reply_error(code, text, "rcpt")
            stage = "data"
            code, text = conn.docmd("DATA")
            if code != 354:
                raise reply_error(code, text, "data")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Before the final dot the server holds no message: nothing was sent.
            raise _connection_lost(exc, stage) from exc
        return self._message(conn, payload)

    def _pipelined_envelope(self, conn: smtplib.SMTP, sender: str, recipient: str) -> None:
        """MAIL, RCPT and DATA in one write; returns once the server answered DATA with 354.

        All three replies are read before any is acted on, so a refused MAIL or RCPT leaves the
        connection in step for RSET. The first refusal is the error, as if the commands had
        gone one by one; a server that still answers DATA with 354 after one is cut off, since
        whatever is sent next would be message text.
        """
        commands = f"MAIL FROM:{_path(sender)}\r\nRCPT TO:{_path(recipient)}\r\nDATA\r\n"
        try:
            conn.send(commands)
            code, text = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _StaleConnection(_connection_lost(exc, "mail")) from exc
        failure = None if code == 250 else reply_error(code, text, "mail")
        stage: Stage = "rcpt"
        try:
            code, text = conn.getreply()
            if failure is None and code not in (250, 251):
                failure = reply_error(code, text, "rcpt")
            stage = "data"
            code, text = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Nothing was sent; a refusal already read says more than the lost connection.
            raise failure or _connection_lost(exc, stage) from exc
        if failure is None and code != 354:
            failure = reply_error(code, text, "data")
        if failure is not None:
            if code == 354:
                conn.close()
            raise failure

    def _message(self, conn: smtplib.SMTP, payload: bytes) -> str:
        """Send the message after the 354 and read the final reply."""
        try:
            conn.send(payload)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Before the final dot the server holds no message: nothing was sent.
            raise _connection_lost(exc, "data") from exc
        try:
            code, text = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The whole message went out; only the verdict is missing.
            raise DeliveryUnknown(
                f"connection lost awaiting the reply to the message: {exc}"
            ) from exc
        if code != 250:
            raise reply_error(code, text, "data")
        return text.decode("utf-8", "replace").strip()[:300]

    def _acquire(self, fresh: bool = False) -> tuple[smtplib.SMTP, bool]:
        if not fresh:
            try:
                return self._idle.get_nowait(), True
            except queue.Empty:
                pass
        return self._connect(), False

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
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if options.username:
                conn.login(options.username, options.password.get_secret_value())
        except smtplib.SMTPAuthenticationError as exc:
            self._discard(conn)
            # Never echo credentials; the server's code says enough.
            raise SmtpDeferred(
                f"SMTP AUTH refused ({exc.smtp_code}); check TRIGGERLINE_MAILER_SMTP_USERNAME "
                "and TRIGGERLINE_MAILER_SMTP_PASSWORD",
                code=exc.smtp_code,
                stage="connect",
                connection_level=True,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            self._discard(conn)
            raise SmtpDeferred(
                f"SMTP session set-up with {options.host}:{options.port} failed: {exc}",
                code=None,
                stage="connect",
                connection_level=True,
            ) from exc
        with self._lock:
            self.connections_opened += 1
        return conn

    def _release(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            keep = not self._closed and self._idle.qsize() < self._options.size
        if keep:
            self._idle.put(conn)
        else:
            self._discard(conn, polite=True)

    def _reset_or_discard(self, conn: smtplib.SMTP, keep: bool) -> None:
        if keep:
            try:
                conn.rset()
            except (smtplib.SMTPException, OSError):
                keep = False
        if keep:
            self._release(conn)
        else:
            self._discard(conn)

    @staticmethod
    def _discard(conn: smtplib.SMTP, polite: bool = False) -> None:
        try:
            if polite:
                conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()


class _StaleConnection(Exception):
    def __init__(self, error: SmtpDeferred) -> None:
        super().__init__(str(error))
        self.error = error


def _command(conn: smtplib.SMTP, verb: str, address: str) -> tuple[int, bytes]:
    """MAIL or RCPT for one address, without options.

    smtplib's `mail` and `rcpt` run every address through `email.utils.parseaddr`, which costs
    more than the command's round trip; an address that is already a bare mailbox (validated
    when the message was built) is sent as is, anything else takes smtplib's path.
    """
    if _BARE_MAILBOX.fullmatch(address) is None:
        return conn.mail(address) if verb.startswith("MAIL") else conn.rcpt(address)
    conn.putcmd(f"{verb}<{address}>")
    return conn.getreply()


def _path(address: str) -> str:
    """An address as MAIL or RCPT sends it: `<addr>`, quoted as smtplib would if need be."""
    path = f"<{address}>" if _BARE_MAILBOX.fullmatch(address) else smtplib.quoteaddr(address)
    if "\r" in path or "\n" in path:  # as smtplib's putcmd refuses: no command injection
        raise ValueError(f"address contains prohibited newline characters: {path!r}")
    return path


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _connection_lost(exc: BaseException, stage: Stage) -> SmtpDeferred:
    return SmtpDeferred(
        f"SMTP connection lost at {stage.upper()} (nothing was sent): {exc}",
        code=None,
        stage=stage,
        connection_level=True,
    )
