"""Identity resolution: which identifiers of a trigger may lead to a profile, and in what order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.common.enrichments import Enrichments
from services.common.identity import IdentityKind, IdentityPrecedence, usable_mc_id


@dataclass(frozen=True)
class IdentityKey:
    kind: IdentityKind
    value: str


def identity_candidates(
    mc_id: str,
    enrichments: Enrichments,
    declared_dimensions: Iterable[str],
    email_dimensions: Iterable[str] = (),
    precedence: IdentityPrecedence = IdentityPrecedence.DECLARED_FIRST,
) -> tuple[IdentityKey, ...]:
    """Identifiers to try, in the routing file's `identity.precedence`.

    `declared_first` (the default): declared ids, then emails, then the mcId. A declared id
    (an eVar) is the shopper who is logged in now; the mcId is the browser, which on a shared
    device still carries whoever clicked a Campaign email on it before, so trying it first
    would mail that previous visitor. `mcid_first` puts the mcId ahead of the others.

    Each declared dimension contributes its first non-empty hit value; emails are compared
    lower-cased. An empty or all-zero mcId (Adobe's placeholder) is no identity.
    """
    declared: list[IdentityKey] = []
    for dimension in declared_dimensions:
        value = enrichments.first(dimension)
        if value:
            declared.append(IdentityKey(IdentityKind.DECLARED, value))
    for dimension in email_dimensions:
        value = enrichments.first(dimension)
        if value and "@" in value:
            declared.append(IdentityKey(IdentityKind.EMAIL, value.lower()))
    browser = usable_mc_id(mc_id)
    mcid = [IdentityKey(IdentityKind.MCID, browser)] if browser is not None else []
    first_mcid = precedence is IdentityPrecedence.MCID_FIRST
    return tuple(dict.fromkeys([*mcid, *declared] if first_mcid else [*declared, *mcid]))


def resolve_profile(
    candidates: Iterable[IdentityKey], found: Mapping[IdentityKey, str]
) -> str | None:
    """The profile id of the first candidate that has one, or `None` (an unmatched trigger)."""
    for key in candidates:
        profile_id = found.get(key)
        if profile_id:
            return profile_id
    return None
