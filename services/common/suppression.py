"""The suppression list's key, what each reason stops, and how a new reason changes a row:
one definition for every service that reads or writes the `suppressions` table."""

from __future__ import annotations

import enum
from typing import Final

UNSUBSCRIBED: Final = "unsubscribed"
HARD_BOUNCE: Final = "hard_bounce"
COMPLAINT: Final = "complaint"
MANUAL: Final = "manual"


def suppression_key(address: str) -> str:
    """The `suppressions.email` key of an address: trimmed and lower-cased.

    Every reader and writer of the table goes through this, so a capital letter or a stray
    space can never let a suppressed address through. The local part is lower-cased too: in
    theory it is case-sensitive, in practice no mailbox provider treats it so, and a false
    match only suppresses, never mails.
    """
    return address.strip().lower()


def applies_to(reason: str, category: str) -> bool:
    """Whether a suppression with this reason stops a campaign of this category.

    An unsubscribe is from subscription mail: the only links the mailer signs are on
    `marketing` campaigns, so `unsubscribed` stops marketing and leaves transactional mail
    (receipts, password resets) alone. Every other reason says the address itself must not be
    mailed (it does not exist, or its owner calls our mail spam) and stops everything.
    """
    if reason == UNSUBSCRIBED:
        return category != "transactional"
    return True


class SuppressionChange(enum.Enum):
    """What a new reason does to the `suppressions` row of an address."""

    INSERT = "insert"  # no row yet
    WIDEN = "widen"  # replace an unsubscribe (marketing only) by a reason that stops everything
    KEEP = "keep"  # the row already says as much: a replay, or a narrower reason


def suppression_change(existing: str | None, wanted: str) -> SuppressionChange:
    """The change `wanted` makes to an address whose row holds `existing` (None: no row).

    An unsubscribe stops marketing mail only, a bounce or a complaint stops all mail, so a
    bounce after an unsubscribe must widen the row, while an unsubscribe after a bounce must
    not narrow it. Two reasons that stop everything keep the first (the table's first-wins
    rule). Every writer of the table (the feedback service, the mailer's hard bounces, the
    suppression import) should decide with this.
    """
    if existing is None:
        return SuppressionChange.INSERT
    if existing == UNSUBSCRIBED and wanted != UNSUBSCRIBED:
        return SuppressionChange.WIDEN
    return SuppressionChange.KEEP
