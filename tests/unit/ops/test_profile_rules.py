"""Profile and suppression rows: mapping, checks, in-file conflicts, and what a batch changes."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from services.ops.errors import OperatorError
from services.ops.rules.profile_changes import StoredProfile, describe_import, merged, plan_batch
from services.ops.rules.profile_rows import (
    FileIndex,
    ProfileRow,
    Reject,
    SuppressionRow,
    column_mapping,
    profile_row,
    suppression_row,
)

HEADER = ["profile_id", "email", "first_name", "locale", "timezone", "email_consent", "mcid",
          "declared_id"]  # fmt: skip
MCID = "1" * 38
MAPPING = column_mapping([], [], HEADER)


def record(**values: object) -> dict[str, object]:
    base: dict[str, object] = {
        "profile_id": "P-1",
        "email": "Ann@Example.com",
        "first_name": "Ann",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "email_consent": "yes",
        "mcid": MCID,
        "declared_id": "D1",
    }
    base.update(values)
    return base


def test_default_mapping_reads_the_usual_columns_and_three_identities() -> None:
    assert MAPPING.identities == (
        ("mcid", "mcid"),
        ("declared", "declared_id"),
        ("email", "email"),
    )
    row = profile_row(3, record(), MAPPING)
    assert isinstance(row, ProfileRow)
    assert (row.line, row.profile_id, row.email, row.consent) == (3, "P-1", "Ann@Example.com", True)
    assert row.identities == (
        ("mcid", MCID),
        ("declared", "D1"),
        ("email", "ann@example.com"),  # the processor looks emails up lower-cased
    )


def test_a_mapping_renames_fields_and_chooses_identity_columns() -> None:
    header = ["CustomerId", "Mail", "Loyalty", "Crm"]
    mapping = column_mapping(
        ["profile_id=CustomerId", "email=Mail"],
        ["declared=Loyalty", "declared=Crm"],
        header,
    )
    row = profile_row(2, {"CustomerId": "C9", "Mail": "c@x.io", "Loyalty": "L", "Crm": ""}, mapping)
    assert isinstance(row, ProfileRow)
    assert (row.profile_id, row.identities, row.consent) == ("C9", (("declared", "L"),), None)


@pytest.mark.parametrize(
    ("maps", "identities", "header", "message"),
    [
        ([], [], ["id", "email"], "column 'profile_id' (profile_id) is not in the file"),
        (["colour=x"], [], HEADER, "--map colour: not a profile field"),
        (["email"], [], HEADER, "is not NAME=COLUMN"),
        (["locale=Lang"], [], HEADER, "--map locale=Lang: no such column"),
        ([], ["phone=mcid"], HEADER, "--identity phone: kinds are declared, email, mcid"),
        ([], ["mcid=ECID"], HEADER, "--identity mcid=ECID: no such column"),
    ],
)
def test_a_bad_mapping_is_refused(
    maps: list[str], identities: list[str], header: list[str], message: str
) -> None:
    with pytest.raises(OperatorError, match=re.escape(message)):
        column_mapping(maps, identities, header)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"profile_id": ""}, "missing_id"),
        ({"profile_id": None}, "missing_id"),
        ({"email": ""}, "invalid_email"),
        ({"email": "not an address"}, "invalid_email"),
        ({"email": "ann@localhost"}, "invalid_email"),
        ({"email": "a\r\nBcc: x@y.z"}, "invalid_email"),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"email_consent": "maybe"}, "invalid_consent"),
        ({"profile_id": "P" * 65}, "too_long"),
    ],
)
def test_rows_that_cannot_be_profiles_are_rejected_with_a_reason(
    values: dict[str, object], reason: str
) -> None:
    rejected = profile_row(7, record(**values), MAPPING)
    assert isinstance(rejected, Reject)
    assert (rejected.line, rejected.reason) == (7, reason)


@pytest.mark.parametrize(
    ("values", "consent", "identities"),
    [
        ({"email_consent": "no"}, False, 3),
        ({"email_consent": "TRUE"}, True, 3),
        ({"email_consent": False}, False, 3),  # JSON Lines carry booleans
        ({"email_consent": ""}, None, 3),  # empty: not given
        ({"mcid": "0" * 38}, True, 2),  # Adobe's all-zero placeholder is no identity
        ({"declared_id": "  "}, True, 2),
    ],
)
def test_optional_cells(values: dict[str, object], consent: bool | None, identities: int) -> None:
    row = profile_row(1, record(**values), MAPPING)
    assert isinstance(row, ProfileRow)
    assert row.consent is consent and len(row.identities) == identities


def _row(line: int, profile_id: str, *identities: tuple[str, str]) -> ProfileRow:
    return ProfileRow(line, profile_id, "a@b.io", None, None, None, None, tuple(identities))


def test_file_index_refuses_a_repeated_profile_and_an_identity_given_to_two() -> None:
    index = FileIndex()
    assert index.claim(_row(2, "P-1", ("mcid", "m1"))) is None
    assert index.claim(_row(3, "P-2", ("mcid", "m2"))) is None
    again = index.claim(_row(4, "P-1"))
    clash = index.claim(_row(5, "P-3", ("declared", "d"), ("mcid", "m1")))
    assert again == Reject(4, "duplicate_profile", "P-1 is also on line 2")
    assert clash is not None and clash.reason == "identity_conflict" and "P-1" in clash.detail
    assert index.claim(_row(6, "P-4", ("declared", "d"))) is None  # the refused row claimed nothing


STORED = StoredProfile("P-1", "a@b.io", "Ann", "en-GB", None, False)


@pytest.mark.parametrize(
    ("stored", "row", "kind", "changed", "consent"),
    [
        (None, _row(1, "P-1"), "insert", (), True),  # a new profile gets the default consent
        (STORED, _row(1, "P-1"), "unchanged", (), False),  # empty cells keep what is stored
        (
            STORED,
            ProfileRow(1, "P-1", "new@b.io", None, None, None, None, ()),
            "update",
            ("email",),
            False,
        ),
        (
            STORED,
            ProfileRow(1, "P-1", "a@b.io", "Bea", None, "Europe/Paris", True, ()),
            "update",
            ("first_name", "timezone", "email_consent"),
            True,
        ),
    ],
)
def test_merged(
    stored: StoredProfile | None,
    row: ProfileRow,
    kind: str,
    changed: tuple[str, ...],
    consent: bool,
) -> None:
    change = merged(stored, row, default_consent=True)
    assert (change.kind, change.changed, change.profile.email_consent) == (kind, changed, consent)
    assert change.profile.first_name == (row.first_name or (stored.first_name if stored else None))


def test_plan_batch_writes_changes_adds_new_identities_and_refuses_taken_ones() -> None:
    rows = [
        _row(2, "P-1", ("mcid", "m1")),  # stored, unchanged, identity already its own
        _row(3, "P-2", ("mcid", "m2"), ("declared", "d2")),  # new
        _row(4, "P-3", ("mcid", "m9")),  # m9 leads to P-9 in the database
    ]
    owners = {("mcid", "m1"): "P-1", ("mcid", "m9"): "P-9"}
    stored = {"P-1": StoredProfile("P-1", "a@b.io", None, None, None, True)}
    plan = plan_batch(rows, stored, owners, default_consent=True)
    assert [p.profile_id for p in plan.writes] == ["P-2"]
    assert plan.identities == [("mcid", "m2", "P-2"), ("declared", "d2", "P-2")]
    assert [(r.line, r.reason) for r in plan.rejects] == [(4, "identity_conflict")]
    assert plan.counts == Counter(
        {"unchanged": 1, "insert": 1, "identities_added": 2, "rejected:identity_conflict": 1}
    )
    text = describe_import(Counter(rows=3, **plan.counts), dry_run=True, rejects_path="r.csv")
    assert text.startswith("3 rows: would insert 1, would update 0, unchanged 1, would add 2")
    assert "rejected 1" in text and "r.csv" in text


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"email": " Ann@Example.COM "}, SuppressionRow(1, "ann@example.com", "manual")),
        ({"email": "b@x.io", "reason": "complaint"}, SuppressionRow(1, "b@x.io", "complaint")),
        ({"email": "b@x.io", "reason": ""}, SuppressionRow(1, "b@x.io", "manual")),
        ({"email": "nope"}, "invalid_email"),
        ({"email": "b@x.io", "reason": "angry"}, "unknown_reason"),
    ],
)
def test_suppression_row(values: dict[str, object], expected: object) -> None:
    row = suppression_row(1, values, "email", "reason", "manual")
    if isinstance(expected, str):
        assert isinstance(row, Reject) and row.reason == expected
    else:
        assert row == expected
