"""Pure auth rules: refresh timing, lifetime units, back-off, client credentials, JWT claims."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from services.auth.rules.assertion import assertion_claims, metascope_claim
from services.auth.rules.clients import client_allowed, parse_clients
from services.auth.rules.refresh import (
    Token,
    lifetime,
    refresh_due_at,
    should_refresh,
)
from services.common.backoff import backoff_delay

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = Token("secret-token-value", T0, T0 + timedelta(seconds=100))


def test_should_refresh_at_the_share_of_lifetime() -> None:
    assert should_refresh(None, T0, 0.8)
    assert not should_refresh(TOKEN, T0 + timedelta(seconds=79.9), 0.8)
    assert should_refresh(TOKEN, T0 + timedelta(seconds=80), 0.8)
    assert should_refresh(TOKEN, T0 + timedelta(seconds=500), 0.8)
    assert not should_refresh(TOKEN, T0 + timedelta(seconds=99), 1.0)
    assert refresh_due_at(TOKEN, 0.5) == T0 + timedelta(seconds=50)
    assert "secret-token-value" not in repr(TOKEN)


def test_token_validity_excludes_the_expiry_instant() -> None:
    assert TOKEN.valid_at(T0 + timedelta(seconds=99.999))
    assert not TOKEN.valid_at(T0 + timedelta(seconds=100))


def test_lifetime_units_per_mode() -> None:
    assert lifetime(86399, "seconds") == timedelta(seconds=86399)
    assert lifetime(86399999, "milliseconds") == timedelta(seconds=86399.999)
    assert lifetime("3600", "seconds") == timedelta(hours=1)
    for bad in (None, 0, -5, True, "soon", [1]):
        with pytest.raises(ValueError):
            lifetime(bad, "seconds")


def test_backoff_grows_is_capped_and_jittered() -> None:
    one, cap = timedelta(seconds=1), timedelta(seconds=30)
    assert backoff_delay(1, one, cap, 0.0) == timedelta(seconds=0.5)
    assert backoff_delay(1, one, cap, 0.999) < one
    assert backoff_delay(4, one, cap, 0.0) == timedelta(seconds=4)
    assert backoff_delay(20, one, cap, 0.999) <= cap


def test_client_credentials() -> None:
    clients = parse_clients("fetcher:abc, ops:def\n# comment\nmailer:ghi:with-colon")
    assert clients == {"fetcher": "abc", "ops": "def", "mailer": "ghi:with-colon"}
    assert client_allowed(clients, "fetcher", "abc")
    assert not client_allowed(clients, "fetcher", "def")
    assert not client_allowed(clients, "nobody", "\0")
    assert not client_allowed(clients, "ops", "")
    for bad in ("fetcher", "fetcher:", ":abc", "a:1,a:2"):
        with pytest.raises(ValueError) as caught:
            parse_clients(bad)
        assert "1" not in str(caught.value) or "entry" in str(caught.value)


def test_assertion_claims_follow_section_5_and_verify_rs256() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    claims = assertion_claims(
        "ORG@AdobeOrg",
        "TA@techacct.adobe.com",
        "cid",
        ["ent_analytics_bulk_ingest_sdk"],
        now,
        timedelta(minutes=5),
    )
    assert claims == {
        "exp": int(now.timestamp()) + 300,
        "iss": "ORG@AdobeOrg",
        "sub": "TA@techacct.adobe.com",
        "aud": "https://ims-na1.adobelogin.com/c/cid",
        "https://ims-na1.adobelogin.com/s/ent_analytics_bulk_ingest_sdk": True,
    }
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signed = jwt.encode(claims, key, algorithm="RS256")
    assert jwt.get_unverified_header(signed)["alg"] == "RS256"
    decoded = jwt.decode(
        signed,
        key.public_key(),
        algorithms=["RS256"],
        audience=claims["aud"],
        options={"verify_exp": False},
    )
    assert decoded == claims
    assert metascope_claim("https://x/s/y") == "https://x/s/y"
