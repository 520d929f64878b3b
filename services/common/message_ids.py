"""The Message-ID of an email, derived from its idempotency key, and its domain-free digest.

The mailer writes `<digest@domain>` on every attempt of one key, so a relay's log, a recipient's
copy and our `deliveries` rows name the same message; an operator matching them (which `unknown`
deliveries never reached the relay?) compares digests, whatever domain the mailer was given.
"""

from __future__ import annotations

import hashlib


def message_digest(idempotency_key: str) -> str:
    """The left-hand side of the key's Message-ID: 40 hex digits of its SHA-256."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]


def digest_of(message_id: str) -> str:
    """`<digest@domain>` (or the bare digest, brackets and case aside) -> `digest`."""
    return message_id.strip().strip("<>").split("@", 1)[0].lower()
