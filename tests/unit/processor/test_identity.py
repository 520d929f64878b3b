"""Identity resolution order: the routing file's precedence, declared ids first by default."""

from __future__ import annotations

import json

import pytest

from services.common.enrichments import parse_enrichments
from services.common.identity import IdentityKind, IdentityPrecedence
from services.processor.rules.identity import (
    IdentityKey,
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


@pytest.mark.parametrize(
    ("precedence", "expected"),
    [
        # the logged-in shopper before the browser, which a shared device may have from before
        (IdentityPrecedence.DECLARED_FIRST, (DECLARED, EMAIL, MCID)),
        (IdentityPrecedence.MCID_FIRST, (MCID, DECLARED, EMAIL)),
    ],
)
def test_candidates_follow_the_precedence(
    precedence: IdentityPrecedence, expected: tuple[IdentityKey, ...]
) -> None:
    parsed = parse_enrichments(enrichments())
    keys = identity_candidates(
        " 123 ", parsed, ["eVar01", "eVar02"], ["eVar9", "eVar10"], precedence
    )
    assert keys == expected


def test_declared_first_is_the_default() -> None:
    parsed = parse_enrichments(enrichments())
    assert identity_candidates("123", parsed, ["eVar01"]) == (DECLARED, MCID)


@pytest.mark.parametrize("mc_id", ["", "   ", "0" * 38, " 00000000000000000000000000000000000000 "])
@pytest.mark.parametrize("precedence", list(IdentityPrecedence))
def test_empty_or_all_zero_mcid_is_no_identity(mc_id: str, precedence: IdentityPrecedence) -> None:
    parsed = parse_enrichments(enrichments())
    keys = identity_candidates(mc_id, parsed, ["eVar01", "eVar01"], (), precedence)
    assert keys == (DECLARED,)  # and duplicates are dropped


def test_a_trigger_with_no_usable_id_has_no_candidates() -> None:
    assert identity_candidates("0" * 38, parse_enrichments("{}"), ["eVar01"], ["eVar9"]) == ()


def test_first_candidate_with_a_profile_wins() -> None:
    found = {DECLARED: "P2", EMAIL: "P3"}
    assert resolve_profile((MCID, DECLARED, EMAIL), found) == "P2"  # DECLARED's profile
    assert resolve_profile((MCID, DECLARED, EMAIL), {**found, MCID: "P1"}) == "P1"  # MCID's


def test_no_profile_is_none() -> None:
    assert resolve_profile((MCID, DECLARED), {}) is None
