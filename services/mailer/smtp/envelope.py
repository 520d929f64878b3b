"""One message as the SMTP wire carries it: the MAIL and RCPT paths and the DATA payload."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass

from services.mailer.message import OutgoingMessage

_LEADING_DOT = re.compile(rb"(?m)^\.")
# A bare mailbox (no brackets, spaces or controls) can go on the wire as `<addr>` as it is.
_BARE_MAILBOX = re.compile(r"[^<>\s\x00-\x1f\x7f]+@[^<>\s\x00-\x1f\x7f]+")


def wire_bytes(message: OutgoingMessage) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, terminated by `.` alone."""
    data = message.as_bytes()
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return _LEADING_DOT.sub(b"..", data) + b".\r\n"


@dataclass(frozen=True)
class Envelope:
    """What one transaction sends: `MAIL FROM:<sender>`, `RCPT TO:<recipient>`, the payload."""

    sender: str
    recipient: str
    payload: bytes

    @classmethod
    def of(cls, message: OutgoingMessage, sender: str, recipient: str) -> Envelope:
        """Raises `ValueError` for an address that could inject a command."""
        return cls(_path(sender), _path(recipient), wire_bytes(message))


def _path(address: str) -> str:
    """An address as MAIL or RCPT sends it: `<addr>`, quoted as smtplib would if need be."""
    path = f"<{address}>" if _BARE_MAILBOX.fullmatch(address) else smtplib.quoteaddr(address)
    if "\r" in path or "\n" in path:  # as smtplib's putcmd refuses: no command injection
        raise ValueError(f"address contains prohibited newline characters: {path!r}")
    return path
