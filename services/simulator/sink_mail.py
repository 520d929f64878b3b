"""Mail the SMTP sink accepted: its record, a cheap header read and its `.eml` file name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


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
