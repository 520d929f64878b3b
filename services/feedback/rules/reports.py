"""Reading delivery status notifications (RFC 3464) and ARF complaints (RFC 5965).

Pure functions over `email.message.Message` objects: the listener parses the bytes, these say
what the report is, or why it is not one (`Unreadable`, which the listener dead-letters).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from services.feedback.rules.bounces import enhanced_status

# The parts that hold the original message (or only its headers) inside a report.
_ORIGINAL_TYPES = (
    "message/rfc822",
    "text/rfc822-headers",
    "message/global",
    "message/global-headers",
)
_STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
_FEEDBACK_TYPES = ("message/feedback-report",)


@dataclass(frozen=True)
class OriginalHeaders:
    """What a report quotes of our email: the places a token of ours can be found."""

    return_path: str | None = None
    list_unsubscribe: str | None = None
    message_id: str | None = None


@dataclass(frozen=True)
class RecipientStatus:
    """One per-recipient block of a DSN."""

    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # the enhanced status code, e.g. 5.1.1
    final_recipient: str | None = None
    diagnostic: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """A DSN: what happened to the email at each recipient it names."""

    recipients: tuple[RecipientStatus, ...]
    original: OriginalHeaders


@dataclass(frozen=True)
class ComplaintReport:
    """An ARF report: a recipient (or their provider) called our email abuse, or not."""

    feedback_type: str  # abuse | fraud | other | virus | not-spam (RFC 5965, RFC 6650)
    original_mail_from: str | None
    original_rcpt_to: tuple[str, ...]
    original: OriginalHeaders


@dataclass(frozen=True)
class Unreadable:
    """Why a message is no report we can act on; `reason` is a short slug for metrics."""

    reason: str
    detail: str = ""


Report = DeliveryReport | ComplaintReport


def parse_report(message: Message) -> Report | Unreadable:
    """The report a message carries: a `multipart/report` of type delivery-status or
    feedback-report. Never raises: whatever an MTA or a stranger sends is an answer."""
    try:
        return _parse(message)
    except (ValueError, TypeError, LookupError, AttributeError) as exc:  # email's odd corners
        return Unreadable("parse_error", f"{type(exc).__name__}: {exc}"[:300])


def _parse(message: Message) -> Report | Unreadable:
    if message.get_content_type() != "multipart/report":
        return Unreadable("not_a_report", f"content type {message.get_content_type()}")
    report_type = str(message.get_param("report-type", "") or "").lower()
    payload = message.get_payload()
    parts = [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []
    original = _original_headers(parts)
    if report_type == "delivery-status":
        return _delivery_report(parts, original)
    if report_type == "feedback-report":
        return _complaint_report(parts, original)
    return Unreadable("unknown_report_type", f"report-type={report_type or '(none)'}")


def _delivery_report(parts: list[Message], original: OriginalHeaders) -> Report | Unreadable:
    status_part = _first(parts, _STATUS_TYPES)
    if status_part is None:
        return Unreadable("no_delivery_status", "multipart/report without message/delivery-status")
    blocks = _field_blocks(status_part)
    recipients: list[RecipientStatus] = []
    for block in blocks[1:]:  # the first block is per message, the rest one per recipient
        status_text = _field(block, "Status")
        status = enhanced_status(status_text or "")
        if status is None:
            continue
        recipients.append(
            RecipientStatus(
                action=(_field(block, "Action") or "").lower(),
                status=status,
                final_recipient=_address_field(_field(block, "Final-Recipient")),
                diagnostic=(_field(block, "Diagnostic-Code") or None),
            )
        )
    if not recipients:
        return Unreadable("no_status", "no per-recipient block with a Status field")
    return DeliveryReport(tuple(recipients), original)


def _complaint_report(parts: list[Message], original: OriginalHeaders) -> Report | Unreadable:
    feedback_part = _first(parts, _FEEDBACK_TYPES)
    if feedback_part is None:
        return Unreadable("no_feedback_report", "multipart/report without message/feedback-report")
    blocks = _field_blocks(feedback_part)
    fields = blocks[0] if blocks else None
    feedback_type = (_field(fields, "Feedback-Type") or "").lower()
    if not feedback_type:
        return Unreadable("no_feedback_type", "feedback report without Feedback-Type")
    rcpt_to = tuple(
        address
        for value in (fields.get_all("Original-Rcpt-To") or [] if fields else [])
        if (address := _address_field(str(value)))
    )
    return ComplaintReport(
        feedback_type=feedback_type,
        original_mail_from=_address_field(_field(fields, "Original-Mail-From")),
        original_rcpt_to=rcpt_to,
        original=original,
    )


def _first(parts: list[Message], types: tuple[str, ...]) -> Message | None:
    return next((part for part in parts if part.get_content_type() in types), None)


def _field_blocks(part: Message) -> list[Message]:
    """The header blocks of a delivery-status or feedback-report part.

    The `email` parser already splits `message/delivery-status` into one message per block and
    reads other `message/*` parts as one embedded message; a part it left as text (a transfer
    encoding, an unexpected type) is split on blank lines here.
    """
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = part.get_payload(decode=True)
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(payload)
    raw = raw.replace("\r\n", "\n")
    return [HeaderParser().parsestr(chunk) for chunk in raw.split("\n\n") if chunk.strip()]


def _original_headers(parts: list[Message]) -> OriginalHeaders:
    part = _first(parts, _ORIGINAL_TYPES)
    if part is None:
        return OriginalHeaders()
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers = payload[0]
    else:
        decoded = part.get_payload(decode=True)
        text = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else str(payload)
        headers = HeaderParser().parsestr(text)
    return OriginalHeaders(
        return_path=_field(headers, "Return-Path"),
        list_unsubscribe=_field(headers, "List-Unsubscribe"),
        message_id=_field(headers, "Message-ID"),
    )


def _field(block: Message | None, name: str) -> str | None:
    """One field's value, unfolded and trimmed; None when absent or empty."""
    if block is None:
        return None
    value = block.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _address_field(value: str | None) -> str | None:
    """`rfc822; user@example.com` (DSN and ARF address fields) -> `user@example.com`."""
    if not value:
        return None
    address = value.split(";", 1)[1] if ";" in value else value
    address = address.strip().strip("<>").strip()
    return address or None
