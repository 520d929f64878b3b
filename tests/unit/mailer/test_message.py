"""Message hygiene: valid addresses only, no header injection, stable Message-ID, unsubscribe."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest

from services.common.addresses import valid_address
from services.common.errors import InvalidInput
from services.mailer.message import (
    ONE_CLICK,
    Unsubscribe,
    build_message,
    header_text,
    message_id,
)
from services.mailer.templates import Rendered
from tests.unit.mailer.helpers import NOW, request

SENDER = "Triggerline Shop <shop@triggerline.invalid>"
RENDERED = Rendered("Your cart", "<p>hi</p>", "hi")
MSG_ID = re.compile(r"^<[0-9a-f]{40}@[A-Za-z0-9.-]+>$")


def _wire(**overrides: object) -> bytes:
    return build_message(request(**overrides), RENDERED, sender=SENDER, now=NOW).as_bytes()


@pytest.mark.parametrize(
    "first_name",
    [
        "Ann\r\nBcc: victim@evil.test",
        "Ann\nBcc: victim@evil.test",
        "Ann\rBcc: x@evil.test",
        "Ann\u2028Bcc: x@evil.test",
    ],
)
def test_line_breaks_in_a_name_cannot_add_a_header(first_name: str) -> None:
    wire = _wire(first_name=first_name)
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["Bcc"] is None
    assert not re.search(rb"(?im)^bcc:", wire)
    assert parsed["To"].addresses[0].addr_spec == "ann@example.com"


def test_line_breaks_in_a_subject_cannot_add_a_header() -> None:
    rendered = Rendered("Sale\r\nBcc: victim@evil.test\r\n\r\nbody", "<p>x</p>", "x")
    wire = build_message(request(), rendered, sender=SENDER, now=NOW).as_bytes()
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Sale Bcc: victim@evil.test body"


def test_header_text_removes_every_control_character() -> None:
    assert header_text("a\r\n\tb\x00c\x85d") == "a b c d"


@pytest.mark.parametrize(
    "address",
    [
        "ann@example.com\r\nBcc: x@evil.test",
        "ann@example.com, bob@example.com",
        "Ann <ann@example.com>",
        "no-at-sign",
        "ann@localhost",
        "ann@@example.com",
        ".ann@example.com",
        "a" * 65 + "@example.com",
        "",
    ],
)
def test_malformed_or_unsafe_recipients_are_invalid(address: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        valid_address(address)
    assert caught.value.reason == "invalid_address"


def test_plausible_addresses_pass() -> None:
    assert valid_address("ann.o'neil+tag@mail.example.co.uk").addr_spec == (
        "ann.o'neil+tag@mail.example.co.uk"
    )


def test_message_id_is_valid_and_derived_from_the_key_alone() -> None:
    first = message_id("key-1", "triggerline.invalid")
    assert MSG_ID.match(first)
    assert first == message_id("key-1", "triggerline.invalid")
    assert first != message_id("key-2", "triggerline.invalid")
    built = build_message(request(), RENDERED, sender=SENDER, now=NOW)
    later = build_message(request(), RENDERED, sender=SENDER, now=NOW + timedelta(hours=1))
    assert built["Message-ID"] == later["Message-ID"] == first


def test_marketing_mail_has_one_click_unsubscribe_and_list_id() -> None:
    link = Unsubscribe("https://shop.example/unsubscribe?token=abc")
    built = build_message(request(), RENDERED, sender=SENDER, now=NOW, unsubscribe=link)
    assert built["List-Unsubscribe"] == "<https://shop.example/unsubscribe?token=abc>"
    assert built["List-Unsubscribe-Post"] == ONE_CLICK == "List-Unsubscribe=One-Click"
    assert built["List-Id"] == "cart_abandonment <cart_abandonment.triggerline.invalid>"
    plain = build_message(request(), RENDERED, sender=SENDER, now=NOW)
    assert plain["List-Unsubscribe"] is None


@pytest.mark.parametrize(
    "url", ["http://x.test/u", "http://10.0.0.5/u", "ftp://x.test/u", "https:///u", "/u"]
)
def test_one_click_requires_https(url: str) -> None:
    with pytest.raises(InvalidInput):
        build_message(request(), RENDERED, sender=SENDER, now=NOW, unsubscribe=Unsubscribe(url))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:7785/unsubscribe", "http://localhost/u", "http://[::1]:80/u"]
)
def test_a_local_run_may_link_to_its_own_loopback_page(url: str) -> None:
    """Only a development run can configure these (insecure_token_settings refuses them)."""
    built = build_message(
        request(), RENDERED, sender=SENDER, now=NOW, unsubscribe=Unsubscribe(f"{url}?token=t")
    )
    assert built["List-Unsubscribe"] == f"<{url}?token=t>"


def test_both_bodies_are_sent_and_non_ascii_survives() -> None:
    rendered = Rendered("Zoë, ton panier — 2 articles", "<p>héllo</p>", "héllo")
    wire = build_message(
        request(first_name='Zoë "Q" O\'Neil, Jr.'), rendered, sender=SENDER, now=NOW
    ).as_bytes()
    assert wire.isascii()  # 7-bit on the wire: encoded words and quoted-printable
    parsed = message_from_bytes(wire, policy=policy.default)
    assert parsed["Subject"] == "Zoë, ton panier — 2 articles"
    assert parsed["To"].addresses[0].display_name == 'Zoë "Q" O\'Neil, Jr.'
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "héllo"
    assert html is not None and "<p>héllo</p>" in html.get_content()
