"""Outcome labels and metric reasons for the outcomes this processor adds."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import fastavro
import pytest

from services.common.models import Outcome, OutcomeStatus
from services.common.serde import load_schema, outcome_serde, released_schemas
from services.common.settings import REPO_ROOT
from services.processor.recorder import reason_kind
from services.processor.rules.decision import outcome_label, parse_label
from services.processor.rules.policies import FUTURE_TIMESTAMP, MISSING_DATA


@pytest.mark.parametrize(
    ("status", "reason", "label"),
    [
        (OutcomeStatus.SKIPPED, "missing_data", "skipped:missing_data"),
        (OutcomeStatus.SUPPRESSED, "no_consent", "suppressed:no_consent"),
        (OutcomeStatus.INVALID, "future_timestamp", "invalid"),
        (OutcomeStatus.SENT, None, "sent"),
    ],
)
def test_dashboard_labels(status: OutcomeStatus, reason: str | None, label: str) -> None:
    assert Outcome(status, "m", "processor", reason=reason).label == label


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("missing_data", "missing_data"),
        ("future_timestamp", "future_timestamp"),
        ("cancelled_by:3f2a-message-id", "cancelled_by"),  # no message ids in metric labels
        ("unexpected:KeyError", "unexpected"),
        (None, ""),
    ],
)
def test_metric_reasons_stay_few(reason: str | None, kind: str) -> None:
    assert reason_kind(reason) == kind


def test_a_skipped_decision_is_remembered_and_repeated() -> None:
    label = outcome_label(OutcomeStatus.SKIPPED, "missing_data")
    assert parse_label(label) == (OutcomeStatus.SKIPPED, "missing_data")


def test_skipped_round_trips_and_an_older_reader_sees_unknown() -> None:
    outcome = Outcome(
        OutcomeStatus.SKIPPED,
        "m-1",
        "processor",
        reason="missing_data",
        detail={"variable": "searchTerms", "why": "absent"},
        at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
    )
    serde = outcome_serde()
    assert Outcome.from_record(serde.decode(serde.encode(outcome.to_record()))) == outcome
    # A reader on the released schema resolves the new symbol to the enum's default.
    older = released_schemas("outcome")[0]
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, load_schema("outcome"), outcome.to_record())
    buffer.seek(0)
    read = fastavro.schemaless_reader(buffer, load_schema("outcome"), older)
    assert isinstance(read, dict)
    assert read["status"] == "UNKNOWN"


@pytest.mark.parametrize(
    ("status", "reason"),
    [(OutcomeStatus.SKIPPED, MISSING_DATA), (OutcomeStatus.INVALID, FUTURE_TIMESTAMP)],
)
def test_the_outcome_table_lists_the_reasons_added_here(status: OutcomeStatus, reason: str) -> None:
    table = [
        line
        for line in (REPO_ROOT / "docs" / "architecture.md").read_text().splitlines()
        if line.startswith(f"| `{status.value}` |")
    ]
    assert len(table) == 1 and f"`{reason}`" in table[0], "docs/architecture.md's outcome table"
