"""Recipient tokens: the signed, opaque references in unsubscribe links and VERP return paths.

A token names one sent email by a random reference (`ref`), which the `message_refs` table maps
to the profile, address, campaign and category (`services/common/message_refs.py`). The token
itself carries no personal data, only:

    version (1 byte) | key id (1) | expiry, Unix seconds (4) | ref (10) | HMAC-SHA256 (first 12)

written in lower-case base32 without padding: 45 characters that survive URLs, mail headers
and MTAs that change the case of local parts, and short enough for `bounce+<token>@<domain>`
(a local part holds at most 64 octets). The MAC covers a purpose label too, so a return-path
token can never be replayed as an unsubscribe link, nor the reverse.

Keys rotate without breaking sent links: `sign` always uses the current key, `verify` accepts
the current and the previous one, chosen by the key id in the token. Everything here is pure:
no clock, no randomness except `new_ref`, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import re
import secrets
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

VERSION = 1
REF_BYTES = 10  # 80 random bits: a collision needs about 10^12 emails, and refs are not guessable
MAC_BYTES = 12
_HEADER = struct.Struct(">BBI")  # version, key id, expiry
_BODY_BYTES = _HEADER.size + REF_BYTES
TOKEN_LENGTH = -(-(_BODY_BYTES + MAC_BYTES) * 8 // 5)  # base32 characters, no padding: 45
REF_LENGTH = -(-REF_BYTES * 8 // 5)  # 16
_DOMAIN_LABEL = b"triggerline-recipient-token\x00"
_BASE32 = re.compile(r"^[a-z2-7]+$")
BOUNCE_PREFIX = "bounce+"


class TokenPurpose(enum.StrEnum):
    """What a token may be redeemed for; part of the signed material."""

    UNSUBSCRIBE = "unsubscribe"
    BOUNCE = "bounce"


class Rejection(enum.StrEnum):
    """Why a token is refused. Checked in this order, so a forgery is never called expired."""

    MALFORMED = "malformed"  # not a token of this format at all
    UNKNOWN_KEY = "unknown_key"  # signed with a key that is neither current nor previous
    BAD_SIGNATURE = "bad_signature"  # forged or altered
    EXPIRED = "expired"  # genuine, but past its expiry


@dataclass(frozen=True)
class SigningKey:
    """One HMAC key and the id (0-255) written in the tokens it signs."""

    key_id: int
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.key_id <= 255:
            raise ValueError(f"key id {self.key_id} is outside 0-255")
        if not self.secret:
            raise ValueError("a signing key cannot be empty")


@dataclass(frozen=True)
class KeyRing:
    """The key new tokens are signed with, and the one before it (still accepted)."""

    current: SigningKey
    previous: SigningKey | None = None

    def __post_init__(self) -> None:
        if self.previous is not None and self.previous.key_id == self.current.key_id:
            raise ValueError("the previous key needs an id of its own")

    def find(self, key_id: int) -> SigningKey | None:
        for key in (self.current, self.previous):
            if key is not None and key.key_id == key_id:
                return key
        return None


@dataclass(frozen=True)
class TokenClaim:
    """What a genuine, unexpired token says: which sent email, until when, under which key."""

    ref: str
    purpose: TokenPurpose
    expires: datetime
    key_id: int


def new_ref() -> str:
    """A fresh random reference for one sent email (16 base32 characters)."""
    return _b32(secrets.token_bytes(REF_BYTES))


def sign(ref: str, purpose: TokenPurpose, expires: datetime, keys: KeyRing) -> str:
    """The token for `ref`, signed with the current key; valid until `expires` (whole seconds,
    rounded down; the token is refused from that second on)."""
    raw_ref = _ref_bytes(ref)
    if raw_ref is None:
        raise ValueError("a ref is 16 base32 characters, as new_ref() makes them")
    key = keys.current
    body = _HEADER.pack(VERSION, key.key_id, _seconds(expires)) + raw_ref
    return _b32(body + _mac(key, purpose, body))


def verify(
    token: str, purpose: TokenPurpose, keys: KeyRing, now: datetime
) -> TokenClaim | Rejection:
    """The claim of a genuine token for this purpose that has not expired at `now`, else why
    not. Never raises for bad input: whatever arrives in a URL or an address is just refused.
    """
    raw = _unb32(token)
    if raw is None or len(raw) != _BODY_BYTES + MAC_BYTES:
        return Rejection.MALFORMED
    body, mac = raw[:_BODY_BYTES], raw[_BODY_BYTES:]
    version, key_id, expires_at = _HEADER.unpack_from(body)
    if version != VERSION:
        return Rejection.MALFORMED
    key = keys.find(key_id)
    if key is None:
        return Rejection.UNKNOWN_KEY
    if not hmac.compare_digest(mac, _mac(key, purpose, body)):
        return Rejection.BAD_SIGNATURE
    expires = datetime.fromtimestamp(expires_at, UTC)
    if now >= expires:
        return Rejection.EXPIRED
    return TokenClaim(_b32(body[_HEADER.size :]), purpose, expires, key_id)


def bounce_address(token: str, domain: str) -> str:
    """The VERP return path `bounce+<token>@<domain>` that names one sent email."""
    return f"{BOUNCE_PREFIX}{token}@{domain}"


def bounce_token(address: str, domain: str) -> str | None:
    """The token of a VERP return path at our bounce domain, or None for any other address.

    Angle brackets and case are ignored (some MTAs upper-case local parts); the token still
    has to pass `verify`.
    """
    text = address.strip().strip("<>").strip().lower()
    local, at, host = text.rpartition("@")
    if not at or host != domain.strip().lower() or not local.startswith(BOUNCE_PREFIX):
        return None
    token = local[len(BOUNCE_PREFIX) :]
    return token or None


_LABELS = {
    purpose: _DOMAIN_LABEL + purpose.value.encode("ascii") + b"\x00" for purpose in TokenPurpose
}


def _mac(key: SigningKey, purpose: TokenPurpose, body: bytes) -> bytes:
    return hmac.digest(key.secret, _LABELS[purpose] + body, "sha256")[:MAC_BYTES]


def _seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("expiry must be timezone-aware")
    seconds = int(moment.timestamp())
    if not 0 <= seconds < 2**32:
        raise ValueError("expiry is outside 1970-2106")
    return seconds


def _ref_bytes(ref: str) -> bytes | None:
    raw = _unb32(ref)
    return raw if raw is not None and len(raw) == REF_BYTES else None


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes | None:
    """Strict decoding: only the canonical lower- or upper-case spelling of some bytes."""
    if not isinstance(text, str) or len(text) > 256:
        return None
    lowered = text.lower()
    if not _BASE32.match(lowered):
        return None
    try:
        raw = base64.b32decode(lowered.upper() + "=" * (-len(lowered) % 8))
    except (binascii.Error, ValueError):
        return None
    # Unused trailing bits could spell one token several ways; only the canonical one counts.
    return raw if _b32(raw) == lowered else None
