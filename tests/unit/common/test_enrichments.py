"""Parsing Adobe's enrichments: stray-space keys, per-hit arrays, products."""

from __future__ import annotations

import json

import pytest

from services.common.enrichments import (
    Enrichments,
    parse_enrichments,
    product_names,
    products,
)
from services.common.errors import InvalidInput


def enrichments(dimensions: dict[str, object], products_object: object = None) -> str:
    summary: dict[str, object] = {"dimensions": dimensions}
    summary["products"] = {} if products_object is None else products_object
    return json.dumps({"analyticsHitSummary": summary})


def dim(*data: object) -> dict[str, object]:
    return {"type": "string", "name": "x", "source": "session summary", "data": list(data)}


def test_stray_space_key_is_matched_stripped() -> None:
    parsed = parse_enrichments(enrichments({" eVar01": dim("", "PI4INE1", "PI4INE1")}))
    assert parsed.first("eVar01") == "PI4INE1"
    assert parsed.first(" eVar01 ") == "PI4INE1"


def test_first_non_empty_hit_wins_and_ints_become_text() -> None:
    parsed = parse_enrichments(
        enrichments({"pageURL": dim("", "  ", "a", "b"), "timeGMT": dim(1469164186, 1469164195)})
    )
    assert parsed.first("pageURL") == "a"
    assert parsed.first("timeGMT") == "1469164186"
    assert parsed.first("absent") is None


def test_keys_differing_only_by_whitespace_are_joined_in_order() -> None:
    parsed = parse_enrichments(enrichments({"eVar01": dim(""), " eVar01": dim("second")}))
    assert parsed.first("eVar01") == "second"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        "[]",
        '{"analyticsHitSummary": 3}',
        '{"analyticsHitSummary": {"dimensions": {"a": 1}}}',
    ],
)
def test_odd_shapes_stay_empty(text: str) -> None:
    assert parse_enrichments(text) == Enrichments()


def test_not_json_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_enrichments("{nope")
    assert caught.value.reason == "bad_enrichments"


def test_products_from_adobe_syntax_each_once_first_seen_first() -> None:
    parsed = parse_enrichments(
        enrichments(
            {"eVar5": dim(";Blue Kettle;1;39.90", "", ";Blue Kettle;1;39.90,;Tea Cups;2;12.00")}
        )
    )
    assert products(parsed, ["products", "eVar5"]) == ("Blue Kettle", "Tea Cups")


def test_products_object_wins_when_it_holds_anything() -> None:
    parsed = parse_enrichments(enrichments({"eVar5": dim("Other")}, {"Kettle": {}, "Cups": {}}))
    assert products(parsed, ["products", "eVar5"]) == ("Kettle", "Cups", "Other")


def test_product_names_plain_and_structured() -> None:
    assert product_names("Kettle, Cups") == ["Kettle", "Cups"]
    assert product_names("Home;Kettle;1;3.0") == ["Kettle"]
    assert product_names(" , ;") == []
