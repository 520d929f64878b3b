"""Opening an SMTP connection: smtplib connects, greets (EHLO), upgrades (STARTTLS), logs in.

Set-up is rare and blocking is fine there; smtplib then hands its socket over, non-blocking,
to a `Connection` the pool drives. Every failure is a connection-level `SmtpDeferred`.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import SecretStr

from services.mailer.errors import SmtpDeferred
from services.mailer.smtp.connection import Connection
from services.mailer.smtp.replies import as_text


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


def open_connection(options: SmtpOptions) -> Connection:
    """A connection ready for MAIL, or `SmtpDeferred` saying why not."""
    conn = _session(options)
    sock = conn.sock
    assert sock is not None  # smtplib connected it
    if conn.file is not None:
        conn.file.close()  # the connection reads the socket itself from here
    conn.sock = conn.file = None
    sock.setblocking(False)
    return Connection(sock, conn.has_extn("pipelining"))


def _session(options: SmtpOptions) -> smtplib.SMTP:
    where = f"{options.host}:{options.port}"
    try:
        conn = smtplib.SMTP(options.host, options.port, timeout=options.timeout.total_seconds())
    except smtplib.SMTPConnectError as exc:
        reply = as_text(exc.smtp_error)[:200]
        message = f"SMTP server {where} refused the session: {exc.smtp_code} {reply}"
        raise _deferred(message, exc.smtp_code) from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise _deferred(f"cannot connect to SMTP server {where}: {exc}") from exc
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
        raise _deferred(
            f"SMTP AUTH refused ({exc.smtp_code}); check TRIGGERLINE_MAILER_SMTP_USERNAME "
            "and TRIGGERLINE_MAILER_SMTP_PASSWORD",
            exc.smtp_code,
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        conn.close()
        raise _deferred(f"SMTP session set-up with {where} failed: {exc}") from exc
    return conn


def _deferred(message: str, code: int | None = None) -> SmtpDeferred:
    return SmtpDeferred(message, code=code, stage="connect", connection_level=True)
