"""The upstream corpus itself: enough cases, every class, each line what its case says it is.

These check the data only; the fetcher's outcomes for it are tested against the fetcher.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import orjson
import pytest

from tests.support.upstream_corpus import (
    CORPUS,
    PIPELINE_MESSAGE,
    REASONS,
    TRIGGER,
    CorpusCase,
    load_corpus,
)

MAX_LINE_BYTES = 1_000_000  # the fetcher's default max line, upstream's own limit
MAX_DEPTH = 64  # the fetcher's default max nesting depth
CASES = load_corpus()
BY_NAME = {case.name: case for case in CASES}
BY_NAME_OF = {case.line: case.name for case in CASES}
# The cases issue 12 names, by class; each must be in the corpus.
REQUIRED = {
    "raw": {
        "io_events_sample_with_declared_id",
        "composed_sample_as_is",
        "composed_sample_io_wrapped",
        "mcid_absent_declared_id",
        "mcid_empty_declared_id",
        "mcid_null_declared_id",
        "mcid_all_zero_declared_id",
        "stray_space_key_is_the_only_identity",
        "extra_unknown_dimensions",
        "enrichments_absent_usable_mcid",
        "huge_per_hit_arrays_20000",
        "non_ascii_values",
        "line_separators_in_values",
        "position_as_strings",
        "create_time_as_string",
        "sent_time_null",
        "timestamps_in_seconds",
        "property_values_as_numbers",
        "crlf_terminated",
        "trigger_path_absent",
    },
    "no_identity": {
        "io_events_sample_as_is",
        "no_mcid_no_declared_id",
        "all_zero_mcid_no_declared_id",
        "whitespace_only_declared_id",
    },
    "not_json": {
        "truncated_mid_document",
        "trailing_garbage",
        "invalid_utf8_byte",
        "bare_word",
        "nan_literal",
        "single_quotes",
    },
    "not_an_object": {"empty_array", "bare_number", "json_string"},
    "unknown_envelope_type": {
        "envelope_type_missing",
        "envelope_type_lower_case",
        "envelope_type_ping",
    },
    "missing_field": {
        "no_pipeline_message",
        "no_trigger_object",
        "no_trigger_id",
        "empty_message_id",
        "no_topic",
    },
    "bad_field": {
        "offset_2_pow_63",
        "offset_negative",
        "partition_object",
        "offset_decimal_string",
        "trigger_timestamp_year_10000",
        "enrichments_list",
        "properties_not_a_list",
        "trigger_path_string",
    },
    "too_deep": {"nesting_300_deep_in_enrichments", "nesting_2000_deep"},
    "oversized": {"one_byte_over_1mb", "ten_mb_line"},
}


def nesting_depth(line: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text, strings skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def envelope(line: bytes) -> dict[str, Any]:
    """The DATA envelope of a line that parses, unwrapped from I/O Events' wrapping."""
    document = orjson.loads(line)
    assert isinstance(document, dict)
    if "event" in document and "envelopeType" not in document:
        document = document["event"]
    assert isinstance(document, dict)
    return document


def has_identity(document: dict[str, Any]) -> bool:
    """A usable mcId (not empty, not all zeros), or a non-blank hit of a dimension whose
    whitespace-stripped key is eVar01: what the fetcher will accept as an identity."""
    trigger = document[PIPELINE_MESSAGE][TRIGGER]
    mcid = trigger.get("mcId")
    if isinstance(mcid, str) and mcid.strip().strip("0"):
        return True
    enrichments = trigger.get("enrichments")
    summary = enrichments.get("analyticsHitSummary") if isinstance(enrichments, dict) else None
    dimensions = summary.get("dimensions") if isinstance(summary, dict) else None
    if not isinstance(dimensions, dict):
        return False
    return any(
        isinstance(value, str) and value.strip()
        for key, dimension in dimensions.items()
        if key.strip() == "eVar01" and isinstance(dimension, dict)
        for value in dimension.get("data") or []
    )


def test_the_corpus_is_large_and_every_class_is_present() -> None:
    assert len(CASES) >= 45
    classes = Counter(case.reason or "raw" for case in CASES)
    assert set(classes) == REASONS | {"raw"}, classes
    for expected_class, names in REQUIRED.items():
        missing = names - set(BY_NAME)
        assert not missing, f"{expected_class}: {sorted(missing)}"
        wrong = [n for n in names if (BY_NAME[n].reason or "raw") != expected_class]
        assert not wrong, f"{expected_class}: {wrong}"


def test_every_entry_is_well_formed_with_a_unique_name_and_a_note() -> None:
    entries = [json.loads(row) for row in CORPUS.read_bytes().split(b"\n") if row.strip()]
    assert len(entries) == len(CASES)
    names = Counter(entry["name"] for entry in entries)
    assert [n for n, count in names.items() if count > 1] == []
    for entry in entries:
        assert set(entry) in (
            {"name", "expect", "reason", "note", "line"},
            {"name", "expect", "reason", "note", "recipe"},
        ), entry["name"]
        assert entry["note"].strip(), entry["name"]
        assert isinstance(entry.get("line", ""), str) and isinstance(entry.get("recipe", {}), dict)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_line_is_one_line_of_the_stated_class(case: CorpusCase) -> None:
    line = case.line
    assert b"\n" not in line and line.strip(), "one non-blank line, LF excluded"
    if case.reason == "oversized":
        assert len(line) > MAX_LINE_BYTES
        return
    assert len(line) <= MAX_LINE_BYTES
    if case.reason == "not_json":
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(line.rstrip(b"\r"))
        return
    if case.reason == "too_deep":
        assert nesting_depth(line) > MAX_DEPTH
        return
    assert nesting_depth(line) <= MAX_DEPTH
    document = orjson.loads(line.rstrip(b"\r"))
    if case.reason == "not_an_object":
        unwrapped = document.get("event") if isinstance(document, dict) else document
        assert not isinstance(unwrapped, dict)
        return
    data = envelope(line.rstrip(b"\r"))
    if case.reason == "unknown_envelope_type":
        assert data.get("envelopeType") not in ("DATA", "SYNC")
        return
    assert data["envelopeType"] == "DATA"
    if case.expect == "raw":
        assert has_identity(data)
        # A valid line states its position, which the integration test rewrites in place.
        assert b'"partition":' in line and b'"offset":' in line
    elif case.reason == "no_identity":
        assert not has_identity(data)


def test_recipes_build_lines_of_the_stated_sizes() -> None:
    recipes = {
        json.loads(row)["name"]: json.loads(row)["recipe"]
        for row in CORPUS.read_bytes().split(b"\n")
        if row.strip() and b'"recipe"' in row
    }
    kinds = Counter(recipe["kind"] for recipe in recipes.values())
    assert {"oversized", "deep", "huge_array", "bytes_hex"} <= set(kinds)
    for name, recipe in recipes.items():
        line = BY_NAME[name].line
        if recipe["kind"] in ("oversized", "padded"):
            assert len(line) == recipe["bytes"], name
            orjson.loads(line)  # too long, not broken
        elif recipe["kind"] == "deep":
            assert nesting_depth(line) >= recipe["depth"] > MAX_DEPTH
        elif recipe["kind"] == "huge_array":
            dimensions = envelope(line)[PIPELINE_MESSAGE][TRIGGER]["enrichments"][
                "analyticsHitSummary"
            ]["dimensions"]
            lengths = {key: len(d["data"]) for key, d in dimensions.items()}
            assert sorted(lengths.values())[-3:] == [recipe["entries"]] * 3, lengths
            assert len(line) < 0.7 * MAX_LINE_BYTES  # well under the bound
        else:
            assert line == bytes.fromhex(recipe["hex"])
            with pytest.raises(UnicodeDecodeError):
                line.decode("utf-8")
    assert {BY_NAME[n].line.__len__() for n in ("one_byte_over_1mb", "ten_mb_line")} == {
        MAX_LINE_BYTES + 1,
        10 * 1024 * 1024,
    }


def test_every_line_is_distinct() -> None:
    """Dead letters are matched to their case by the SHA-256 of the line."""
    lines = Counter(case.line for case in CASES)
    assert [BY_NAME_OF[line] for line, count in lines.items() if count > 1] == []


def test_valid_cases_have_distinct_message_ids() -> None:
    """So no fetcher or test can mistake one valid case for a repeat of another."""
    ids = Counter(
        envelope(case.line.rstrip(b"\r"))[PIPELINE_MESSAGE]["header"]["messageId"]
        for case in CASES
        if case.expect == "raw"
    )
    assert [i for i, count in ids.items() if count > 1] == []
