"""The idempotency key of an email request."""

from __future__ import annotations

import hashlib


def idempotency_key(campaign: str, profile_id: str, message_id: str) -> str:
    """sha256 of `campaign|profile|messageId`, hex.

    Deterministic from the business event, so a replay or a redelivery of the same trigger gives
    the same key and the mailer's claim blocks a second send; never minted at send time.
    """
    material = f"{campaign}|{profile_id}|{message_id}".encode()
    return hashlib.sha256(material).hexdigest()
