"""Which SMTP rejections put an address on the suppression list, read from the reply."""

from __future__ import annotations

import re

from services.mailer.errors import Stage

HARD_BOUNCE = "hard_bounce"

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(reply_text: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply text (`5.1.1`), if any."""
    match = _ENHANCED.match(reply_text)
    return ".".join(match.groups()) if match else None


def bounce_suppression(code: int, enhanced: str | None, stage: Stage) -> str | None:
    """The suppression reason a permanent SMTP rejection earns, or None.

    Only recipient-level rejections suppress the address: an enhanced `5.1.x` (bad mailbox or
    domain), or, when the server gives no enhanced code, a 550/551/553 at RCPT. Policy and content
    rejections (`5.7.x`, or any 5xx on DATA) say nothing about the address itself.
    """
    if code < 500:
        return None
    if enhanced is not None:
        return HARD_BOUNCE if enhanced.startswith("5.1.") else None
    if stage == "rcpt" and code in (550, 551, 553):
        return HARD_BOUNCE
    return None
