"""Where a report names the email it is about: the tokens of ours it carries, best first."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from services.common.unsubscribe_token import (
    KeyRing,
    Rejection,
    TokenPurpose,
    bounce_token,
    verify,
)
from services.feedback.rules.reports import ComplaintReport, Report

_LINK = re.compile(r"<([^<>\s]+)>")


@dataclass(frozen=True)
class Reference:
    """A token found in a report, with the purpose it must be verified for."""

    purpose: TokenPurpose
    token: str


def report_references(
    rcpt_tos: Sequence[str], report: Report, bounce_domain: str
) -> tuple[Reference, ...]:
    """Every token of ours in the envelope and the report, most reliable first.

    The envelope recipient is the VERP return path itself when an MTA bounces; a feedback loop
    usually writes to a fixed mailbox instead, and the report then quotes the return path in
    `Original-Mail-From` or the original's `Return-Path`. The original's List-Unsubscribe link
    is the last resort: its token names the same email.
    """
    found: list[Reference] = []
    addresses = [*rcpt_tos]
    if isinstance(report, ComplaintReport) and report.original_mail_from:
        addresses.append(report.original_mail_from)
    if report.original.return_path:
        addresses.append(report.original.return_path)
    for address in addresses:
        token = bounce_token(address, bounce_domain)
        if token is not None:
            found.append(Reference(TokenPurpose.BOUNCE, token))
    for url in _LINK.findall(report.original.list_unsubscribe or ""):
        token = unsubscribe_link_token(url)
        if token is not None:
            found.append(Reference(TokenPurpose.UNSUBSCRIBE, token))
    return tuple(dict.fromkeys(found))


def unsubscribe_link_token(url: str) -> str | None:
    """The `token` query parameter of an https:// or http:// link, if any."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        return None
    values = parse_qs(parts.query).get("token")
    return values[0] if values else None


class RecipientVerdict(enum.StrEnum):
    """What the listener answers to one RCPT TO."""

    ACCEPT = "accept"
    UNKNOWN = "unknown"  # not an address this listener serves
    REFUSED = "refused"  # a return path of ours whose token is not genuine or has expired


def judge_recipient(
    address: str,
    bounce_domain: str,
    complaint_mailbox: str,
    keys: KeyRing,
    now: datetime,
) -> tuple[RecipientVerdict, Rejection | None]:
    """Accept the complaint mailbox and genuine, unexpired VERP addresses; nothing else.

    Checking the token at RCPT keeps forged bounces out before any content is read or stored,
    so a stranger cannot fill the dead-letter store by writing to made-up addresses.
    """
    text = address.strip().strip("<>").strip().lower()
    domain = bounce_domain.strip().lower()
    if complaint_mailbox and text == f"{complaint_mailbox.lower()}@{domain}":
        return RecipientVerdict.ACCEPT, None
    token = bounce_token(text, domain)
    if token is None:
        return RecipientVerdict.UNKNOWN, None
    claim = verify(token, TokenPurpose.BOUNCE, keys, now)
    if isinstance(claim, Rejection):
        return RecipientVerdict.REFUSED, claim
    return RecipientVerdict.ACCEPT, None
