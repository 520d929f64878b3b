"""The mailer's first token format (`<payload>.<mac>`), accepted while its links are live.

Those tokens carry the profile id readably, so the mailer stops issuing them when it moves to
`services/common/unsubscribe_token.py`; links already in inboxes keep working until their own
expiry (60 days by default), after which this module and its setting can go.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from services.common.unsubscribe_token import Rejection

_MAC_BYTES = 16


@dataclass(frozen=True)
class LegacyClaim:
    """Who unsubscribes from what, as the old format says it."""

    profile_id: str
    category: str
    expires: datetime


def is_legacy(token: str) -> bool:
    """Old tokens hold a `.`; the current format is base32 and never does."""
    return "." in token


def verify_legacy(token: str, secret: bytes, now: datetime) -> LegacyClaim | Rejection:
    """The claim of a genuine, unexpired old-format token, or why not (never raises)."""
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = _unb64(payload_text)
        mac = _unb64(mac_text)
    except (ValueError, binascii.Error):
        return Rejection.MALFORMED
    expected = hmac.digest(secret, payload, "sha256")[:_MAC_BYTES]
    if not hmac.compare_digest(expected, mac):
        return Rejection.BAD_SIGNATURE
    try:
        data = json.loads(payload)
        claim = LegacyClaim(
            str(data["p"]), str(data["c"]), datetime.fromtimestamp(int(data["e"]), UTC)
        )
    except (ValueError, KeyError, TypeError, OverflowError, OSError):
        return Rejection.MALFORMED
    return claim if now < claim.expires else Rejection.EXPIRED


def _unb64(text: str) -> bytes:
    """URL-safe base64 without padding; any other character is an error, not skipped."""
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
