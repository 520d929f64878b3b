"""Recipient tokens: sign and verify, rotation, tampering, expiry, VERP addresses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from services.common.unsubscribe_token import (
    REF_LENGTH,
    TOKEN_LENGTH,
    KeyRing,
    Rejection,
    SigningKey,
    TokenClaim,
    TokenPurpose,
    bounce_address,
    bounce_token,
    new_ref,
    sign,
    verify,
)

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
OLD = SigningKey(3, b"o" * 40)
CURRENT = SigningKey(4, b"c" * 40)
RING = KeyRing(CURRENT, OLD)
REF = "abcdefghijklmnop"
UNSUB = TokenPurpose.UNSUBSCRIBE


def _token(
    ring: KeyRing = RING, expires: datetime = NOW + timedelta(days=1), ref: str = REF
) -> str:
    return sign(ref, UNSUB, expires, ring)


def _flip(token: str, at: int) -> str:
    replacement = "a" if token[at] != "a" else "b"
    return token[:at] + replacement + token[at + 1 :]


def test_a_genuine_token_gives_back_its_claim() -> None:
    token = _token()
    assert len(token) == TOKEN_LENGTH == 45
    assert re.fullmatch(r"[a-z2-7]+", token)
    claim = verify(token, UNSUB, RING, NOW)
    assert claim == TokenClaim(REF, UNSUB, NOW + timedelta(days=1), CURRENT.key_id)


def test_the_token_holds_no_readable_personal_data() -> None:
    # Only the random ref travels: nothing in the token spells an address or a profile id.
    ref = new_ref()
    assert len(ref) == REF_LENGTH and re.fullmatch(r"[a-z2-7]{16}", ref)
    assert new_ref() != ref
    token = sign(ref, UNSUB, NOW + timedelta(days=1), RING)
    assert "@" not in token and "profile" not in token


@pytest.mark.parametrize(
    ("token", "ring", "now", "expected"),
    [
        pytest.param(_token(), RING, NOW, None, id="genuine"),
        pytest.param(_token(KeyRing(OLD)), RING, NOW, None, id="previous key still accepted"),
        pytest.param(
            _token(KeyRing(OLD)), KeyRing(CURRENT), NOW, Rejection.UNKNOWN_KEY, id="retired key"
        ),
        pytest.param(
            _token(KeyRing(SigningKey(4, b"x" * 40))),
            RING,
            NOW,
            Rejection.BAD_SIGNATURE,
            id="forged with the right key id",
        ),
        pytest.param(
            _token(), RING, NOW + timedelta(days=1), Rejection.EXPIRED, id="expiry is exclusive"
        ),
        pytest.param(
            _token(),
            RING,
            NOW + timedelta(days=1) - timedelta(seconds=1),
            None,
            id="valid the second before",
        ),
        pytest.param(_token().upper(), RING, NOW, None, id="upper case (an MTA folding case)"),
        pytest.param("", RING, NOW, Rejection.MALFORMED, id="empty"),
        pytest.param("not a token", RING, NOW, Rejection.MALFORMED, id="garbage"),
        pytest.param(_token()[:-1], RING, NOW, Rejection.MALFORMED, id="truncated"),
        pytest.param(_token() + "a", RING, NOW, Rejection.MALFORMED, id="too long"),
        pytest.param("a" * 5000, RING, NOW, Rejection.MALFORMED, id="huge"),
        pytest.param(
            "eyJwIjoiUDEiLCJjIjoibWFya2V0aW5nIiwiZSI6MX0.bWFj",
            RING,
            NOW,
            Rejection.MALFORMED,
            id="old format",
        ),
    ],
)
def test_verify(token: str, ring: KeyRing, now: datetime, expected: Rejection | None) -> None:
    result = verify(token, UNSUB, ring, now)
    if expected is None:
        assert isinstance(result, TokenClaim) and result.ref == REF
    else:
        assert result == expected


@pytest.mark.parametrize("position", range(TOKEN_LENGTH))
def test_any_altered_character_is_refused(position: int) -> None:
    result = verify(_flip(_token(), position), UNSUB, RING, NOW)
    assert isinstance(result, Rejection), position


def test_a_bounce_token_is_no_unsubscribe_link_and_the_reverse() -> None:
    bounce = sign(REF, TokenPurpose.BOUNCE, NOW + timedelta(days=1), RING)
    assert verify(bounce, UNSUB, RING, NOW) == Rejection.BAD_SIGNATURE
    assert verify(_token(), TokenPurpose.BOUNCE, RING, NOW) == Rejection.BAD_SIGNATURE
    assert isinstance(verify(bounce, TokenPurpose.BOUNCE, RING, NOW), TokenClaim)


def test_forgery_is_not_reported_as_expiry() -> None:
    forged = _token(KeyRing(SigningKey(4, b"x" * 40)), expires=NOW - timedelta(days=1))
    assert verify(forged, UNSUB, RING, NOW) == Rejection.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("ref", "expires"),
    [
        ("short", NOW),
        ("ABCDEFGHIJKLMNOP!", NOW),
        (REF, datetime(2025, 1, 6, 12, 0)),  # naive: refused, time is explicit
    ],
)
def test_sign_refuses_bad_input(ref: str, expires: datetime) -> None:
    with pytest.raises(ValueError):
        sign(ref, UNSUB, expires, RING)


def test_keys_are_validated_and_never_shown() -> None:
    with pytest.raises(ValueError):
        SigningKey(256, b"k")
    with pytest.raises(ValueError):
        SigningKey(1, b"")
    with pytest.raises(ValueError):
        KeyRing(SigningKey(1, b"a"), SigningKey(1, b"b"))
    assert "cccc" not in repr(CURRENT)


def test_the_return_path_fits_a_local_part() -> None:
    token = sign(new_ref(), TokenPurpose.BOUNCE, NOW + timedelta(days=30), RING)
    address = bounce_address(token, "bounces.example.com")
    local = address.split("@", 1)[0]
    assert len(local) <= 64  # RFC 5321 section 4.5.3.1.1
    assert bounce_token(address, "bounces.example.com") == token


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("bounce+abc@bounces.example.com", "abc"),
        ("<BOUNCE+ABC@Bounces.Example.com>", "abc"),
        (" bounce+abc@bounces.example.com ", "abc"),
        ("bounce+@bounces.example.com", None),
        ("bounce+abc@example.com", None),
        ("other+abc@bounces.example.com", None),
        ("fbl@bounces.example.com", None),
        ("bounce+abc", None),
        ("", None),
    ],
)
def test_bounce_token(address: str, expected: str | None) -> None:
    assert bounce_token(address, "bounces.example.com") == expected
