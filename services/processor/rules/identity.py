"""Identity resolution: which identifiers of a trigger may lead to a profile, and in what order."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.processor.rules.enrichments import Enrichments


class IdentityKind(enum.StrEnum):
    """The `identities.kind` column."""

    MCID = "mcid"
    DECLARED = "declared"
    EMAIL = "email"


@dataclass(frozen=True)
class IdentityKey:
    kind: IdentityKind
    value: str


@dataclass(frozen=True)
class Resolution:
    """The profile a trigger belongs to, and the identifier that found it."""

    profile_id: str
    via: IdentityKey


def identity_candidates(
    mc_id: str,
    enrichments: Enrichments,
    declared_dimensions: Iterable[str],
    email_dimensions: Iterable[str] = (),
) -> tuple[IdentityKey, ...]:
    """Identifiers to try, most specific first: the mcId, declared ids, then emails.

    The mcId comes first because it is tied to this very browser; a declared shopper id (an eVar)
    is the usual key when the visitor never clicked a Campaign email. Each declared dimension
    contributes its first non-empty hit value. Emails are compared lower-cased.
    """
    keys: list[IdentityKey] = []
    if mc_id.strip():
        keys.append(IdentityKey(IdentityKind.MCID, mc_id.strip()))
    for dimension in declared_dimensions:
        value = enrichments.first(dimension)
        if value:
            keys.append(IdentityKey(IdentityKind.DECLARED, value))
    for dimension in email_dimensions:
        value = enrichments.first(dimension)
        if value and "@" in value:
            keys.append(IdentityKey(IdentityKind.EMAIL, value.lower()))
    return tuple(dict.fromkeys(keys))


def resolve_profile(
    candidates: Iterable[IdentityKey], found: Mapping[IdentityKey, str]
) -> Resolution | None:
    """The profile of the first candidate that has one, or `None` (an unmatched trigger)."""
    for key in candidates:
        profile_id = found.get(key)
        if profile_id:
            return Resolution(profile_id=profile_id, via=key)
    return None
