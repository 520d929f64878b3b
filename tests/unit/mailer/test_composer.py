"""Every email names its own ref: the return path and the unsubscribe link are tokens for it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from services.common.campaign_config import Campaign
from services.common.unsubscribe_token import (
    KeyRing,
    Rejection,
    SigningKey,
    TokenClaim,
    TokenPurpose,
    bounce_token,
    verify,
)
from services.mailer.composer import Composer, RecipientTokens
from services.mailer.templates import TemplateSet
from tests.unit.mailer.helpers import NOW, request, write_template

KEYS = KeyRing(SigningKey(4, b"composer-unit-tests-key-" + b"x" * 16))
TOKENS = RecipientTokens(
    keys=KEYS,
    unsubscribe_url="https://mail.example.com/unsubscribe",
    unsubscribe_ttl=timedelta(days=60),
    bounce_domain="bounces.example.com",
    bounce_ttl=timedelta(days=30),
)
SENDER = "Shop <shop@example.com>"


@pytest.fixture
def templates(tmp_path: Path) -> TemplateSet:
    write_template(tmp_path, "t", "Hi {{ first_name }}", "<p>hi</p>", "hi")
    return TemplateSet(tmp_path, {"cart_abandonment": "t"})


def _campaign(category: str) -> Campaign:
    return Campaign.model_validate({"template": "t", "category": category, "sender": SENDER})


def _claim(token: str, purpose: TokenPurpose) -> TokenClaim:
    claim = verify(token, purpose, KEYS, NOW)
    assert isinstance(claim, TokenClaim), claim
    return claim


def test_a_marketing_email_names_one_ref_in_its_link_and_its_return_path(
    templates: TemplateSet,
) -> None:
    composed = Composer(TOKENS).compose(request(), _campaign("marketing"), templates, NOW)

    ref = composed.ref
    assert (ref.email, ref.profile_id, ref.campaign, ref.category) == (
        "ann@example.com",
        "p-1",
        "cart_abandonment",
        "marketing",
    )
    assert (ref.idempotency_key, ref.message_id, ref.sent_at) == ("key-1", "msg-1", NOW)
    assert ref.expires_at == NOW + timedelta(days=60)  # the longer of the two lifetimes
    link = str(composed.message["List-Unsubscribe"]).strip("<>")
    assert link.startswith("https://mail.example.com/unsubscribe?token=")
    (token,) = parse_qs(urlsplit(link).query)["token"]
    unsubscribe = _claim(token, TokenPurpose.UNSUBSCRIBE)
    assert unsubscribe.ref == ref.ref and unsubscribe.expires == NOW + timedelta(days=60)
    returned = bounce_token(composed.return_path, "bounces.example.com")
    assert returned is not None and composed.return_path.startswith("bounce+")
    bounce = _claim(returned, TokenPurpose.BOUNCE)
    assert bounce.ref == ref.ref and bounce.expires == NOW + timedelta(days=30)
    # the two tokens are not interchangeable, and neither shows the profile or the address
    assert verify(token, TokenPurpose.BOUNCE, KEYS, NOW) is Rejection.BAD_SIGNATURE
    assert verify(returned, TokenPurpose.UNSUBSCRIBE, KEYS, NOW) is Rejection.BAD_SIGNATURE
    # (the tokens themselves are random: their content is checked above, by what they verify to)
    bare_link, bare_path = link.replace(token, ""), composed.return_path.replace(returned, "")
    assert "p-1" not in bare_link and "ann" not in bare_link and "ann" not in bare_path


def test_a_transactional_email_has_a_return_path_and_no_unsubscribe_link(
    templates: TemplateSet,
) -> None:
    composed = Composer(TOKENS).compose(request(), _campaign("transactional"), templates, NOW)

    assert composed.message["List-Unsubscribe"] is None
    assert composed.ref.category == "transactional"
    assert composed.ref.expires_at == NOW + timedelta(days=30)
    returned = bounce_token(composed.return_path, "bounces.example.com")
    assert returned is not None and _claim(returned, TokenPurpose.BOUNCE).ref == composed.ref.ref


def test_every_attempt_gets_a_ref_of_its_own_and_the_envelope_uses_the_return_path(
    templates: TemplateSet,
) -> None:
    composer = Composer(TOKENS)
    first = composer.compose(request(), _campaign("marketing"), templates, NOW)
    again = composer.compose(request(), _campaign("marketing"), templates, NOW)

    assert first.ref.ref != again.ref.ref
    assert first.message["Message-ID"] == again.message["Message-ID"]  # one key, one Message-ID
    envelope = Composer.envelope(request(), first)
    assert envelope.sender == f"<{first.return_path}>"
    assert envelope.recipient == "<ann@example.com>"
    assert str(first.message["From"]) == SENDER  # the visible sender is the campaign's
