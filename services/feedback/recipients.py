"""Turns a token into the sent email it names (`Recipient`), or says why it cannot."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.common.message_refs import MessageRef
from services.common.unsubscribe_token import KeyRing, Rejection, TokenPurpose, verify
from services.feedback.rules.legacy_token import LegacyClaim, is_legacy, verify_legacy
from services.feedback.rules.references import Reference

UNKNOWN_REF = "unknown_ref"  # a genuine token whose row is gone (pruned) or was never written
UNKNOWN_PROFILE = "unknown_profile"  # an old-format token for a profile that is gone
LEGACY_DISABLED = "legacy_disabled"  # an old-format token, and no legacy key is configured
NO_REFERENCE = "no_reference"  # a report that quotes no token of ours


@dataclass(frozen=True)
class Recipient:
    """The sent email a token names, with what an outcome about it needs."""

    event_ref: str  # the key of its events: the token's ref (old tokens: profile + category)
    email: str
    category: str
    message_id: str
    profile_id: str | None = None
    campaign: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Refusal:
    """Why no recipient: a token `Rejection` value or one of the reasons above."""

    reason: str


class RefLookup(Protocol):
    def find(self, ref: str) -> MessageRef | None: ...


class ProfileEmails(Protocol):
    def profile_email(self, profile_id: str) -> str | None: ...


class Recipients:
    """Verifies tokens against the key ring and looks up what they name."""

    def __init__(
        self,
        refs: RefLookup,
        profiles: ProfileEmails,
        keys: KeyRing,
        legacy_key: bytes | None = None,
    ) -> None:
        self._refs = refs
        self._profiles = profiles
        self._keys = keys
        self._legacy_key = legacy_key

    def resolve(self, token: str, purpose: TokenPurpose, now: datetime) -> Recipient | Refusal:
        if purpose is TokenPurpose.UNSUBSCRIBE and is_legacy(token):
            return self._legacy(token, now)
        claim = verify(token, purpose, self._keys, now)
        if isinstance(claim, Rejection):
            return Refusal(claim.value)
        row = self._refs.find(claim.ref)
        if row is None:
            return Refusal(UNKNOWN_REF)
        return Recipient(
            event_ref=row.ref,
            email=row.email,
            category=row.category,
            message_id=row.message_id,
            profile_id=row.profile_id,
            campaign=row.campaign,
            idempotency_key=row.idempotency_key,
        )

    def first(self, references: Sequence[Reference], now: datetime) -> Recipient | Refusal:
        """The first reference that resolves; else the refusal of the first one tried."""
        refusal = Refusal(NO_REFERENCE)
        for index, reference in enumerate(references):
            found = self.resolve(reference.token, reference.purpose, now)
            if isinstance(found, Recipient):
                return found
            if index == 0:
                refusal = found
        return refusal

    def _legacy(self, token: str, now: datetime) -> Recipient | Refusal:
        if not self._legacy_key:
            return Refusal(LEGACY_DISABLED)
        claim = verify_legacy(token, self._legacy_key, now)
        if isinstance(claim, Rejection):
            return Refusal(claim.value)
        email = self._profiles.profile_email(claim.profile_id)
        if email is None:
            return Refusal(UNKNOWN_PROFILE)
        return Recipient(
            event_ref=legacy_event_ref(claim),
            email=email,
            category=claim.category,
            message_id=f"unsubscribe:{legacy_event_ref(claim)}",
            profile_id=claim.profile_id,
        )


def legacy_event_ref(claim: LegacyClaim) -> str:
    """One event per profile and category, whichever old email's link was used."""
    digest = hashlib.sha256(f"{claim.profile_id}|{claim.category}".encode()).hexdigest()
    return f"legacy-{digest[:32]}"
