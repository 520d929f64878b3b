"""The unsubscribe pages, their language, the one-click body, old-format links and the
settings the feedback service refuses to start with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import string
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from services.common.token_settings import DEVELOPMENT_KEY, TokenSettings, insecure_token_settings
from services.common.unsubscribe_token import Rejection
from services.feedback.catalogue import CATALOGUE, DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES
from services.feedback.pages import CONTENT_SECURITY_POLICY, render_page
from services.feedback.rules.language import choose_language
from services.feedback.rules.legacy_token import LegacyClaim, is_legacy, verify_legacy
from services.feedback.rules.unsubscribe import (
    PageKind,
    is_one_click,
    mask_address,
    refusal_page,
)

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
STRONG = "k" * 48


@pytest.mark.parametrize(
    ("requested", "header", "expected"),
    [
        (None, None, "en"),
        (None, "fr-CH, fr;q=0.9, en;q=0.8", "fr"),
        (None, "de-DE,de;q=0.9", "de"),
        (None, "es, de;q=0.5", "de"),
        (None, "en;q=0.1, de;q=0.7", "de"),
        (None, "fr;q=0", "en"),
        (None, "*", "en"),
        (None, ";;, ,q=x, de;q=nonsense", "en"),
        ("de", "fr", "de"),
        ("xx", "fr", "fr"),
        ("FR", None, "fr"),
    ],
)
def test_choose_language(requested: str | None, header: str | None, expected: str) -> None:
    assert choose_language(requested, header, LANGUAGES, DEFAULT_LANGUAGE) == expected


def test_the_catalogue_is_complete_in_every_language() -> None:
    assert {"en", "fr", "de"} <= set(LANGUAGES) == set(LANGUAGE_NAMES)
    keys = set(CATALOGUE["en"])
    for lang, strings in CATALOGUE.items():
        assert set(strings) == keys, lang
        for key, text in strings.items():
            fields = {f for _, f, _, _ in string.Formatter().parse(text) if f}
            english = {f for _, f, _, _ in string.Formatter().parse(CATALOGUE["en"][key]) if f}
            assert fields == english, (lang, key)
    for kind in PageKind:
        assert f"{kind.value}.heading" in keys and f"{kind.value}.body" in keys


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_confirmation_page_works_without_scripts(lang: str) -> None:
    html = render_page(PageKind.CONFIRM, lang, "m•••@example.org", "tok<en>")
    assert f'<html lang="{lang}">' in html
    assert "<script" not in html.lower() and " on" not in re.sub(r"\s+", " ", html).lower().replace(
        " one-click", ""
    )
    assert '<form method="post">' in html and "action=" not in html  # posts to its own URL
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in html
    assert '<button type="submit">' in html and CATALOGUE[lang]["confirm.button"] in html
    assert "m•••@example.org" in html
    assert "tok&lt;en&gt;" not in html and "token=tok%3Cen%3E" in html  # escaped in links


def test_pages_without_an_action_have_no_button_and_the_style_matches_the_policy() -> None:
    html = render_page(PageKind.EXPIRED, "de", None, None)
    assert "<form" not in html and "<nav" not in html
    assert CATALOGUE["de"]["expired.heading"] in html
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "script-src" not in CONTENT_SECURITY_POLICY  # default-src 'none' forbids scripts


@pytest.mark.parametrize(
    ("reason", "page", "status"),
    [
        ("malformed", PageKind.INVALID, 400),
        ("bad_signature", PageKind.INVALID, 400),
        ("unknown_key", PageKind.INVALID, 400),
        ("expired", PageKind.EXPIRED, 410),
        ("unknown_ref", PageKind.INVALID, 404),
        ("something new", PageKind.INVALID, 400),
    ],
)
def test_refusal_page(reason: str, page: PageKind, status: int) -> None:
    assert refusal_page(reason) == (page, status)


@pytest.mark.parametrize(
    ("form", "one_click"),
    [
        ({"List-Unsubscribe": "One-Click"}, True),
        ({"List-Unsubscribe": "One-Click", "via": "page"}, True),
        ({}, False),
        ({"List-Unsubscribe": "one-click-please"}, False),
        ({"list-unsubscribe": "One-Click"}, False),
    ],
)
def test_is_one_click(form: dict[str, str], one_click: bool) -> None:
    assert is_one_click(form) is one_click


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("maria@example.org", "m••••@example.org"),
        ("al@example.org", "a•••@example.org"),
        ("averyveryverylongname@example.org", "a••••••@example.org"),
        ("broken", "•••"),
    ],
)
def test_mask_address(address: str, masked: str) -> None:
    assert mask_address(address) == masked


def _legacy(profile: str, expires: datetime, secret: bytes) -> str:
    """The mailer's first format, as `services/mailer/unsubscribe.py` writes it."""
    payload = json.dumps(
        {"p": profile, "c": "marketing", "e": int(expires.timestamp())}, separators=(",", ":")
    ).encode()
    mac = hmac.digest(secret, payload, "sha256")[:16]

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(payload)}.{b64(mac)}"


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (
            _legacy("P-1", NOW + timedelta(days=1), b"old"),
            LegacyClaim("P-1", "marketing", NOW + timedelta(days=1)),
        ),
        (_legacy("P-1", NOW, b"old"), Rejection.EXPIRED),
        (_legacy("P-1", NOW + timedelta(days=1), b"other"), Rejection.BAD_SIGNATURE),
        ("abc.$$$", Rejection.MALFORMED),
        ("e30.bWFj", Rejection.BAD_SIGNATURE),
    ],
)
def test_old_format_links(token: str, expected: LegacyClaim | Rejection) -> None:
    assert is_legacy(token)
    assert verify_legacy(token, b"old", NOW) == expected


def _tokens(**values: object) -> TokenSettings:
    defaults: dict[str, object] = {
        "key": SecretStr(STRONG),
        "unsubscribe_url": "https://mail.example.com/unsubscribe",
        "bounce_domain": "bounces.example.com",
    }
    return TokenSettings(**{**defaults, **values})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "variables"),
    [
        ({}, []),
        ({"key": SecretStr(DEVELOPMENT_KEY)}, ["TRIGGERLINE_TOKENS_KEY"]),
        ({"key": SecretStr("short")}, ["TRIGGERLINE_TOKENS_KEY"]),
        (
            {"previous_key": SecretStr(DEVELOPMENT_KEY), "previous_key_id": 9},
            ["TRIGGERLINE_TOKENS_PREVIOUS_KEY"],
        ),
        (
            {"unsubscribe_url": "https://triggerline.invalid/unsubscribe"},
            ["TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL"],
        ),
        (
            {"unsubscribe_url": "http://127.0.0.1:7783/unsubscribe"},
            ["TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL"],
        ),
        ({"bounce_domain": "bounces.triggerline.invalid"}, ["TRIGGERLINE_TOKENS_BOUNCE_DOMAIN"]),
    ],
)
def test_insecure_token_settings(values: dict[str, object], variables: list[str]) -> None:
    problems = insecure_token_settings(_tokens(**values))
    assert [p.split(" ", 1)[0] for p in problems] == variables
    assert all(DEVELOPMENT_KEY not in p and STRONG not in p for p in problems)


def test_the_defaults_are_refused_and_keys_need_their_own_ids() -> None:
    assert len(insecure_token_settings(TokenSettings())) == 3  # key, URL, bounce domain
    with pytest.raises(ValueError, match="own id"):
        _tokens(previous_key=SecretStr(STRONG), previous_key_id=1)
    ring = _tokens(previous_key=SecretStr("p" * 40), previous_key_id=2).key_ring()
    assert ring.current.key_id == 1 and ring.previous is not None and ring.previous.key_id == 2


def test_the_service_refuses_development_settings_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from services.common.errors import ConfigurationError
    from services.feedback.main import refuse_insecure
    from services.feedback.settings import load_config

    for name in ("KEY", "UNSUBSCRIBE_URL", "BOUNCE_DOMAIN", "DEVELOPMENT"):
        monkeypatch.delenv(f"TRIGGERLINE_TOKENS_{name}", raising=False)
    monkeypatch.delenv("TRIGGERLINE_FEEDBACK_LEGACY_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="TRIGGERLINE_TOKENS_KEY") as refused:
        refuse_insecure(load_config())
    assert DEVELOPMENT_KEY not in str(refused.value)

    monkeypatch.setenv("TRIGGERLINE_TOKENS_DEVELOPMENT", "true")
    refuse_insecure(load_config())  # warns only

    monkeypatch.delenv("TRIGGERLINE_TOKENS_DEVELOPMENT")
    monkeypatch.setenv("TRIGGERLINE_TOKENS_KEY", STRONG)
    monkeypatch.setenv("TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL", "https://mail.example.com/u")
    monkeypatch.setenv("TRIGGERLINE_TOKENS_BOUNCE_DOMAIN", "bounces.example.com")
    refuse_insecure(load_config())
    monkeypatch.setenv("TRIGGERLINE_FEEDBACK_LEGACY_KEY", DEVELOPMENT_KEY)
    with pytest.raises(ConfigurationError, match="TRIGGERLINE_FEEDBACK_LEGACY_KEY"):
        refuse_insecure(load_config())
