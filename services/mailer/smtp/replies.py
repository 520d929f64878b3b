"""SMTP replies: whole replies parsed from the bytes received, and the error a refusal is."""

from __future__ import annotations

from services.mailer.errors import DeliveryUnknown, SmtpDeferred, SmtpRejected, Stage
from services.mailer.rules.suppression import enhanced_status

# Longest reply accepted (smtplib's line limit); more without an end is not an SMTP server.
_MAX_REPLY = 8192

SendError = SmtpDeferred | SmtpRejected | DeliveryUnknown
Reply = tuple[int, bytes]  # the code and the text, a multi-line reply's lines joined by "\n"


class ConnectionLost(Exception):
    """The connection can carry nothing more (closed, timed out, or not speaking SMTP)."""


class ReplyParser:
    """Cuts received bytes into replies; a multi-line reply (`250-...`) comes out whole."""

    def __init__(self) -> None:
        self._inbox = bytearray()
        self._lines: list[bytes] = []  # a multi-line reply so far

    def add(self, data: bytes) -> None:
        """Bytes received, to be cut into replies by the next `replies`."""
        self._inbox += data

    def replies(self) -> list[Reply]:
        """The complete replies received so far, in order; `ConnectionLost` for what is no
        SMTP reply."""
        replies: list[Reply] = []
        start = 0
        while (end := self._inbox.find(b"\n", start)) >= 0:
            line = bytes(self._inbox[start:end]).rstrip(b"\r")
            start = end + 1
            if not line[:3].isdigit():
                raise ConnectionLost(f"not an SMTP reply: {line[:80]!r}")
            self._lines.append(line[4:].strip(b" \t"))
            if line[3:4] != b"-":
                replies.append((int(line[:3]), b"\n".join(self._lines)))
                self._lines = []
        del self._inbox[:start]
        if len(self._inbox) > _MAX_REPLY:
            raise ConnectionLost("reply line too long")
        return replies


def reply_error(code: int, text: bytes | str, stage: Stage) -> SmtpDeferred | SmtpRejected:
    """The error kind of a non-success reply: 4xx (and oddities) defer, 5xx reject.

    421 and `4.7.x` (rate limits, policy back-off) concern the server connection rather than the
    recipient, so the pool backs off instead of counting an attempt against the address.
    """
    reply = as_text(text)
    enhanced = enhanced_status(reply)
    summary = f"SMTP {code} at {stage.upper()}: {reply.strip()[:300]}"
    if code >= 500:
        return SmtpRejected(summary, code=code, enhanced=enhanced, stage=stage)
    connection_level = code == 421 or (enhanced or "").startswith("4.7.")
    return SmtpDeferred(summary, code=code, stage=stage, connection_level=connection_level)


def connection_lost(why: str, stage: Stage) -> SmtpDeferred:
    """A connection that failed before the message's final dot left: nothing was sent."""
    return SmtpDeferred(
        f"SMTP connection lost at {stage.upper()} (nothing was sent): {why}",
        code=None,
        stage=stage,
        connection_level=True,
    )


def as_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
