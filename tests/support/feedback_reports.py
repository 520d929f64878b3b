"""Inbound reports as MTAs and mailbox providers write them: DSNs (RFC 3464) and ARF (RFC 5965).

Shaped after Postfix bounces and the RFC 5965 example, with CRLF line ends, so the unit tests
parse what the SMTP listener will really receive.
"""

from __future__ import annotations

DEFAULT_DOMAIN = "bounces.example.com"


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def original_headers(
    *,
    return_path: str | None = None,
    list_unsubscribe: str | None = None,
    to: str = "maria@example.org",
) -> str:
    lines = []
    if return_path:
        lines.append(f"Return-Path: <{return_path}>")
    lines += [
        "From: Triggerline Shop <shop@example.com>",
        f"To: {to}",
        "Subject: You left something in your cart",
        "Message-ID: <0f3c9a@example.com>",
    ]
    if list_unsubscribe:
        lines.append(f"List-Unsubscribe: <{list_unsubscribe}>")
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    return "\n".join(lines) + "\n"


def dsn(
    *,
    to: str,
    recipients: list[tuple[str, str]] | None = None,
    status: str = "5.1.1",
    action: str = "failed",
    final_recipient: str = "maria@example.org",
    return_path: str | None = None,
    list_unsubscribe: str | None = None,
    original: str = "headers",
    status_as_text: bool = False,
) -> bytes:
    """A bounce to `to` (the VERP return path). `recipients` lists (action, status) blocks;
    default one block. `original`: `headers` (text/rfc822-headers), `message`
    (message/rfc822) or `none`."""
    blocks = recipients or [(action, status)]
    per_recipient = "\n".join(
        f"Final-Recipient: rfc822; {final_recipient}\n"
        f"Original-Recipient: rfc822;{final_recipient}\n"
        f"Action: {block_action}\n"
        f"Status: {block_status}\n"
        "Remote-MTA: dns; mx.example.org\n"
        f"Diagnostic-Code: smtp; {block_status[0]}50 {block_status} <{final_recipient}>: "
        "Recipient address rejected\n"
        for block_action, block_status in blocks
    )
    headers = original_headers(
        return_path=return_path or to, list_unsubscribe=list_unsubscribe, to=final_recipient
    )
    if original == "headers":
        original_part = (
            "--B1\nContent-Type: text/rfc822-headers\n"
            "Content-Description: Undelivered Message Headers\n\n" + headers + "\n"
        )
    elif original == "message":
        original_part = (
            "--B1\nContent-Type: message/rfc822\n"
            "Content-Description: Undelivered Message\n\n"
            + headers
            + "Content-Type: text/plain; charset=utf-8\n\nYour cart misses you.\n\n"
        )
    else:
        original_part = ""
    status_type = "text/plain" if status_as_text else "message/delivery-status"
    text = (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        f"To: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: Mon, 06 Jan 2025 10:00:00 +0000\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B1"\n'
        "Message-Id: <20250106100000.4F2A1@mx.example.net>\n"
        "\n"
        "This is a MIME-encapsulated message.\n"
        "\n"
        "--B1\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "Content-Description: Notification\n"
        "\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
        "\n"
        "--B1\n"
        f"Content-Type: {status_type}\n"
        "Content-Description: Delivery report\n"
        "\n"
        "Reporting-MTA: dns; mx.example.net\n"
        "X-Postfix-Queue-ID: 4F2A1\n"
        "Arrival-Date: Mon, 06 Jan 2025 09:59:58 +0000\n"
        "\n" + per_recipient + "\n" + original_part + "--B1--\n"
    )
    return _crlf(text)


def arf(
    *,
    to: str = f"fbl@{DEFAULT_DOMAIN}",
    feedback_type: str = "abuse",
    original_mail_from: str | None = None,
    original_rcpt_to: str | None = "maria@example.org",
    return_path: str | None = None,
    list_unsubscribe: str | None = None,
) -> bytes:
    """A feedback-loop complaint (RFC 5965, appendix B shape) sent to `to`."""
    fields = [f"Feedback-Type: {feedback_type}", "User-Agent: SomeGenerator/1.0", "Version: 1"]
    if original_mail_from:
        fields.append(f"Original-Mail-From: <{original_mail_from}>")
    if original_rcpt_to:
        fields.append(f"Original-Rcpt-To: <{original_rcpt_to}>")
    fields += ["Arrival-Date: Mon, 06 Jan 2025 09:59:58 +0000", "Source-IP: 192.0.2.1"]
    headers = original_headers(return_path=return_path, list_unsubscribe=list_unsubscribe)
    text = (
        "From: <abusedesk@mail.example.org>\n"
        "Date: Mon, 06 Jan 2025 12:00:00 +0000\n"
        "Subject: FW: You left something in your cart\n"
        f"To: <{to}>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part1"\n'
        "\n"
        "--part1\n"
        'Content-Type: text/plain; charset="US-ASCII"\n'
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        "This is an email abuse report for an email message received from IP\n"
        "192.0.2.1 on Mon, 06 Jan 2025 09:59:58 +0000.\n"
        "\n"
        "--part1\n"
        "Content-Type: message/feedback-report\n"
        "\n" + "\n".join(fields) + "\n"
        "\n"
        "--part1\n"
        "Content-Type: message/rfc822\n"
        "Content-Disposition: inline\n"
        "\n" + headers + "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "Your cart misses you.\n"
        "\n"
        "--part1--\n"
    )
    return _crlf(text)


def vacation_reply(*, to: str) -> bytes:
    """An auto-reply that went to the return path instead of the sender: not a report."""
    return _crlf(
        "From: Maria <maria@example.org>\n"
        f"To: {to}\n"
        "Subject: Out of office\n"
        "Auto-Submitted: auto-replied\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        "I am away until Monday.\n"
    )
