"""What a delivery status says about the address, and when soft bounces add up to a hard one."""

from __future__ import annotations

import enum
import re

_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


class BounceKind(enum.StrEnum):
    """How one DSN status bears on the address it was sent to."""

    HARD = "hard"  # the address does not work: suppress it
    SOFT = "soft"  # it may work later: count it
    POLICY = "policy"  # the receiver refused *us* (policy, content, protocol): never the address
    NONE = "none"  # delivered, relayed, expanded: not a failure at all


# RFC 3463 subjects: 0 other, 1 addressing, 2 mailbox, 3 mail system, 4 network and routing say
# something about the recipient; 5 protocol, 6 content and 7 security or policy say something
# about the sender. A DKIM or DMARC failure answered 5.7.x by every large provider must never
# suppress their whole user base, so those are recorded and alerted on, not suppressed.
_SENDER_SUBJECTS = frozenset({5, 6, 7})


def enhanced_status(text: str) -> str | None:
    """The RFC 3463 code at the start of a Status field (`5.1.1 (bad mailbox)` -> `5.1.1`)."""
    match = _STATUS.match(text)
    return ".".join(match.groups()) if match else None


def classify_status(status: str) -> BounceKind:
    """The kind of an enhanced status code; anything unreadable is `NONE` (never suppresses)."""
    code = enhanced_status(status)
    if code is None:
        return BounceKind.NONE
    klass, subject, _ = (int(part) for part in code.split("."))
    if klass == 2:
        return BounceKind.NONE
    if subject in _SENDER_SUBJECTS:
        return BounceKind.POLICY
    return BounceKind.HARD if klass == 5 else BounceKind.SOFT


_SEVERITY = {BounceKind.HARD: 3, BounceKind.SOFT: 2, BounceKind.POLICY: 1, BounceKind.NONE: 0}


def worst(kinds: list[BounceKind]) -> BounceKind:
    """The most severe kind among a report's recipients (a DSN may list several)."""
    return max(kinds, key=_SEVERITY.__getitem__, default=BounceKind.NONE)


def soft_bounce_limit_reached(soft_bounces_in_window: int, limit: int) -> bool:
    """Whether this many soft bounces (this one included, one per email sent) suppress.

    A mailbox that is full or a server that is down on three separate emails within a week is
    treated as gone, as the major ESPs do; one email's repeated delay warnings count once.
    """
    return soft_bounces_in_window >= limit
