"""Builds the MIME email of one request: addresses checked, headers clean, Message-ID stable."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from urllib.parse import urlencode, urlsplit

from services.common.addresses import CONTROL, valid_address
from services.common.errors import InvalidInput
from services.common.message_ids import message_digest
from services.common.models import EmailRequest
from services.common.token_settings import is_loopback
from services.mailer.templates import Rendered

_SPACES = re.compile(r"\s{2,}")

ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True)
class Unsubscribe:
    """The one-click unsubscribe link of one message, already signed."""

    url: str


def header_text(value: str, limit: int = 300) -> str:
    """A header value that can never start a new header: controls become spaces, then trimmed."""
    return _SPACES.sub(" ", CONTROL.sub(" ", value)).strip()[:limit]


@lru_cache(maxsize=256)
def sender_address(sender: str) -> Address:
    """`Name <addr>` from the campaign file, validated like a recipient."""
    name, addr = parseaddr(sender)
    checked = valid_address(addr)
    return Address(header_text(name), checked.username, checked.domain)


def message_id(idempotency_key: str, domain: str) -> str:
    """`<hex@domain>`, the same for every attempt of one key, so duplicates are detectable."""
    return f"<{message_digest(idempotency_key)}@{domain}>"


def one_click_url(url: str) -> bool:
    """Whether a List-Unsubscribe link may go out: https:// (RFC 8058), or http:// to this
    machine, which only a development run can configure (`insecure_token_settings` refuses it
    anywhere else at start-up)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and is_loopback(parts.hostname or "")


def unsubscribe_link(base_url: str, token: str) -> str:
    """The base URL with the token as a query parameter."""
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}{urlencode({'token': token})}"


@dataclass(frozen=True)
class OutgoingMessage:
    """A finished email: clean headers plus the text and HTML alternatives.

    Serialised by hand rather than through the `email` package, whose header registry and
    folding cost more than the whole SMTP exchange; the parts are quoted-printable, so the
    message is 7-bit, and the boundary starts with `=_`, which quoted-printable never emits.
    """

    headers: tuple[tuple[str, str], ...]
    text: str
    html: str
    boundary: str

    def __getitem__(self, name: str) -> str | None:
        wanted = name.lower()
        found = [value for key, value in self.headers if key.lower() == wanted]
        return found[-1] if found else None

    def as_bytes(self) -> bytes:
        """The message with CRLF line ends, ready for DATA (before dot-stuffing)."""
        b = self.boundary
        head = [f"{name}: {value}" for name, value in self.headers]
        head += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{b}"']
        lines = [*head, "", "This is a multi-part message in MIME format.", ""]
        for subtype, body in (("plain", self.text), ("html", self.html)):
            lines += [
                f"--{b}",
                f'Content-Type: text/{subtype}; charset="utf-8"',
                "Content-Transfer-Encoding: quoted-printable",
                "",
                _quoted_printable(body),
            ]
        lines += [f"--{b}--", ""]
        return "\r\n".join(lines).encode("ascii")


def build_message(
    request: EmailRequest,
    rendered: Rendered,
    *,
    sender: str,
    now: datetime,
    message_id_domain: str = "",
    unsubscribe: Unsubscribe | None = None,
) -> OutgoingMessage:
    """The message to send: text and HTML alternatives, with marketing headers when given.

    Every header value passes through `header_text`, so a CR or LF in a first name, subject or
    campaign name cannot add a header. `unsubscribe` adds `List-Unsubscribe` with its RFC 8058
    one-click companion and a `List-Id`.
    """
    recipient = valid_address(request.email)
    from_address = sender_address(sender)
    display = header_text(request.first_name or "", limit=100)
    msg_id = message_id(request.idempotency_key, message_id_domain or from_address.domain)
    headers = [
        ("From", _from_header(sender)),
        ("To", _mailbox(display, recipient.addr_spec)),
        ("Subject", _encoded(header_text(rendered.subject, limit=250))),
        ("Date", _date_header(now)),
        ("Message-ID", msg_id),
        ("X-Triggerline-Campaign", _encoded(header_text(request.campaign, limit=100))),
        ("X-Triggerline-Key", _encoded(header_text(request.idempotency_key, limit=128))),
    ]
    if unsubscribe is not None:
        if not one_click_url(unsubscribe.url):
            raise InvalidInput("invalid_unsubscribe", "RFC 8058 one-click needs an https:// URL")
        list_name = header_text(request.campaign, limit=100)
        headers += [
            ("List-Unsubscribe", f"<{_encoded(header_text(unsubscribe.url, limit=900))}>"),
            ("List-Unsubscribe-Post", ONE_CLICK),
            ("List-Id", _encoded(f"{list_name} <{list_name}.{from_address.domain}>")),
        ]
    boundary = "=_tl_" + msg_id.strip("<>").split("@", 1)[0][:24]
    return OutgoingMessage(tuple(headers), rendered.text, rendered.html, boundary)


def _quoted_printable(body: str) -> str:
    encoded = binascii.b2a_qp(body.encode("utf-8")).decode("ascii")
    return encoded.replace("\r\n", "\n").replace("\n", "\r\n")


def _encoded(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 encoded words."""
    return value if value.isascii() else Header(value, "utf-8").encode(linesep="\r\n")


@lru_cache(maxsize=256)
def _from_header(sender: str) -> str:
    address = sender_address(sender)
    return _mailbox(address.display_name, address.addr_spec)


@lru_cache(maxsize=8)
def _date_header(now: datetime) -> str:
    # A whole batch shares one `now`: formatted once, not once per message.
    return format_datetime(now)


def _mailbox(name: str, addr_spec: str) -> str:
    return formataddr((name, addr_spec), charset="utf-8") if name else addr_spec
