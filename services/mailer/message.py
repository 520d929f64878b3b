"""Builds the MIME email of one request: addresses checked, headers clean, Message-ID stable."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlencode

from services.common.errors import InvalidInput
from services.common.models import EmailRequest
from services.mailer.templates import Rendered

# Deliberately narrower than RFC 5322: the dot-atom forms real mailboxes use, no quoted local
# parts, no IP literals. Anything else is dead-lettered rather than guessed at.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"^(?P<local>{_LOCAL})@(?P<domain>{_LABEL}(?:\.{_LABEL})+)$")
# Control characters (CR and LF above all) and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_SPACES = re.compile(r"\s{2,}")

ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Unsubscribe:
    """The one-click unsubscribe link of one message, already signed."""

    url: str


def header_text(value: str, limit: int = 300) -> str:
    """A header value that can never start a new header: controls become spaces, then trimmed."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()[:limit]


def valid_address(address: str) -> Address:
    """The address as a header object, or `InvalidInput` for anything unsafe or malformed."""
    if _CONTROL.search(address) or len(address) > 254:
        raise InvalidInput("invalid_address", "address holds control characters or is too long")
    match = _ADDRESS.match(address.strip())
    if match is None or len(match["local"]) > 64:
        raise InvalidInput("invalid_address", f"{address.strip()[:80]!r} is not a mailbox address")
    return Address(username=match["local"], domain=match["domain"])


def sender_address(sender: str) -> Address:
    """`Name <addr>` from the campaign file, validated like a recipient."""
    name, addr = parseaddr(sender)
    checked = valid_address(addr)
    return Address(header_text(name), checked.username, checked.domain)


def message_id(idempotency_key: str, domain: str) -> str:
    """`<hex@domain>`, the same for every attempt of one key, so duplicates are detectable."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def unsubscribe_link(base_url: str, token: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{urlencode({'token': token})}"


def build_message(
    request: EmailRequest,
    rendered: Rendered,
    *,
    sender: str,
    now: datetime,
    message_id_domain: str = "",
    unsubscribe: Unsubscribe | None = None,
) -> EmailMessage:
    """The message to send: text and HTML alternatives, with marketing headers when given.

    Every header value passes through `header_text`, so a CR or LF in a first name, subject or
    campaign name cannot add a header. `unsubscribe` adds `List-Unsubscribe` with its RFC 8058
    one-click companion and a `List-Id`.
    """
    recipient = valid_address(request.email)
    from_address = sender_address(sender)
    display = header_text(request.first_name or "", limit=100)
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = Address(display, recipient.username, recipient.domain)
    message["Subject"] = header_text(rendered.subject, limit=250)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(
        request.idempotency_key, message_id_domain or from_address.domain
    )
    message["X-Triggerline-Campaign"] = header_text(request.campaign, limit=100)
    message["X-Triggerline-Key"] = header_text(request.idempotency_key, limit=128)
    if unsubscribe is not None:
        if not unsubscribe.url.startswith("https://"):
            raise InvalidInput("invalid_unsubscribe", "RFC 8058 one-click needs an https:// URL")
        message["List-Unsubscribe"] = f"<{header_text(unsubscribe.url, limit=900)}>"
        message["List-Unsubscribe-Post"] = ONE_CLICK
        list_name = header_text(request.campaign, limit=100)
        message["List-Id"] = f"{list_name} <{list_name}.{from_address.domain}>"
    # Quoted-printable keeps the body 7-bit, so no server needs 8BITMIME.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message
