"""Signed, opaque unsubscribe tokens for the one-click List-Unsubscribe link (RFC 8058)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class UnsubscribeClaim:
    """Who unsubscribes from what, until when the link is honoured."""

    profile_id: str
    category: str
    expires: datetime


# One encoder for every token: `json.dumps` with options builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(claim: UnsubscribeClaim, secret: bytes) -> str:
    """`<payload>.<mac>`, URL-safe; the payload is readable but cannot be altered."""
    payload = _COMPACT.encode(
        {"p": claim.profile_id, "c": claim.category, "e": int(claim.expires.timestamp())}
    ).encode()
    mac = hmac.digest(secret, payload, "sha256")[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


def verify_token(token: str, secret: bytes, now: datetime) -> UnsubscribeClaim | None:
    """The claim of a genuine, unexpired token, else None (never an exception for bad input)."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = _unb64(payload_text)
        expected = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(expected, _unb64(mac_text)):
            return None
        data = json.loads(payload)
        claim = UnsubscribeClaim(
            str(data["p"]), str(data["c"]), datetime.fromtimestamp(int(data["e"]), UTC)
        )
    except (ValueError, KeyError, TypeError):
        return None
    return claim if now < claim.expires else None
