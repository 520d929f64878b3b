"""Identity resolution order: mcId, declared ids, then email."""

from __future__ import annotations

import json

from services.processor.rules.enrichments import parse_enrichments
from services.processor.rules.identity import (
    IdentityKey,
    IdentityKind,
    Resolution,
    identity_candidates,
    resolve_profile,
)

MCID = IdentityKey(IdentityKind.MCID, "123")
DECLARED = IdentityKey(IdentityKind.DECLARED, "SHOPPER1")
EMAIL = IdentityKey(IdentityKind.EMAIL, "ada@example.com")


def enrichments() -> str:
    dims = {
        " eVar01": {"data": ["", "SHOPPER1", "SHOPPER1"]},
        "eVar9": {"data": ["", "Ada@Example.com"]},
        "eVar10": {"data": ["not-an-email"]},
    }
    return json.dumps({"analyticsHitSummary": {"dimensions": dims}})


def test_candidates_in_order_mcid_declared_email() -> None:
    parsed = parse_enrichments(enrichments())
    keys = identity_candidates(" 123 ", parsed, ["eVar01", "eVar02"], ["eVar9", "eVar10"])
    assert keys == (MCID, DECLARED, EMAIL)


def test_empty_mcid_is_skipped_and_duplicates_dropped() -> None:
    parsed = parse_enrichments(enrichments())
    assert identity_candidates("", parsed, ["eVar01", "eVar01"]) == (DECLARED,)


def test_first_candidate_with_a_profile_wins() -> None:
    found = {DECLARED: "P2", EMAIL: "P3"}
    assert resolve_profile((MCID, DECLARED, EMAIL), found) == Resolution("P2", DECLARED)
    assert resolve_profile((MCID, DECLARED, EMAIL), {**found, MCID: "P1"}) == Resolution("P1", MCID)


def test_no_profile_is_none() -> None:
    assert resolve_profile((MCID, DECLARED), {}) is None
