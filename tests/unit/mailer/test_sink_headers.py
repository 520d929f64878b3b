"""The SMTP sink reads a message's Message-ID from the header block alone."""

from __future__ import annotations

from services.simulator.sink_mail import header_value


def test_the_first_header_of_the_name_is_read_in_any_case_and_unfolded() -> None:
    content = (
        b"From: a@example.com\r\nmessage-id:\r\n <x@example.com>\r\nMessage-ID: <y@z>\r\n\r\nb"
    )
    assert header_value(content, "Message-ID") == "<x@example.com>"


def test_a_header_only_in_the_body_is_absent() -> None:
    content = b"Subject: hi\r\n\r\nMessage-ID: <in-the-body@example.com>\r\n"
    assert header_value(content, "Message-ID") is None
    assert header_value(b"Message-ID: <first@line>\r\n\r\n", "Message-ID") == "<first@line>"
