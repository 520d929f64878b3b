"""The trigger generator: deterministic, Adobe-shaped, and every DATA envelope parses."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest

from services.common.errors import InvalidInput
from services.fetcher.envelopes import Data, parse_envelope
from services.simulator.catalog import (
    CART_ABANDONMENT,
    SEARCH_ABANDONMENT,
    TRIGGER_TYPES,
    UNKNOWN_TRIGGER_ID,
)
from services.simulator.generator import PIPELINE_MESSAGE, TRIGGER, Generated, Mix, TriggerGenerator
from services.simulator.log import TopicLog
from services.simulator.population import shopper
from services.simulator.variability import Variability

NOW_MS = 1_790_000_000_000


def draw(mix: Mix, seed: int, count: int) -> list[Generated]:
    generator = TriggerGenerator(mix, seed)
    return [generator.next(NOW_MS + i) for i in range(count)]


def stamped_lines(items: list[Generated]) -> list[bytes]:
    log = TopicLog("triggers", 15, 10_000, timedelta(days=3))
    lines = []
    for item in items:
        if item.envelope is not None:
            lines.append(log.append_envelope(item.envelope, 3, NOW_MS).line)
        else:
            lines.append(log.append_raw(item.raw or b"", 3, NOW_MS).line)
    return lines


def test_same_seed_same_envelopes_and_another_seed_differs() -> None:
    assert draw(Mix(repeat_share=0.2, malformed_share=0.1), 5, 200) == draw(
        Mix(repeat_share=0.2, malformed_share=0.1), 5, 200
    )
    assert draw(Mix(), 5, 20) != draw(Mix(), 6, 20)


def test_every_generated_data_envelope_parses_with_the_fetcher() -> None:
    items = draw(Mix(weights=tuple((t, 1.0) for t in TRIGGER_TYPES)), 1, 400)
    kinds: Counter[str] = Counter()
    for line in stamped_lines(items):
        parsed = parse_envelope(line)
        assert isinstance(parsed, Data)
        kinds[parsed.record["pipelineMessage"]["trigger"]["triggerId"]] += 1
    assert set(kinds) == {t.trigger_id for t in TRIGGER_TYPES}


def test_envelope_shape_units_and_per_hit_arrays() -> None:
    mix = Mix(weights=((SEARCH_ABANDONMENT, 1.0),))
    item = draw(mix, 3, 1)[0]
    assert item.envelope is not None
    message = item.envelope[PIPELINE_MESSAGE]
    header, trigger = message["header"], message[TRIGGER]
    assert header["messageType"] == "TRIGGER" and header["source"] == "triggers"
    assert abs(header["sentTime"] - NOW_MS) < 1000  # milliseconds
    assert all(isinstance(p["value"], str) for p in header["properties"])
    props = {p["name"]: int(p["value"]) for p in header["properties"] if p["name"] != "trace"}
    assert props["sourceLastTimestamp"] < NOW_MS / 1000 < props["triggerFiredTimestamp"]
    assert trigger["triggerId"] == SEARCH_ABANDONMENT.trigger_id
    assert len(trigger["mcId"]) == 38
    summary = trigger["enrichments"]["analyticsHitSummary"]
    assert summary["products"] == {}
    dims = summary["dimensions"]
    hits = len(dims["timeGMT"]["data"])
    assert hits >= 3
    for name in ("eVar01", "pageURL", "eVar5", "eVar7", "timeGMT"):
        assert dims[name]["source"] == "session summary" and len(dims[name]["data"]) == hits
    assert dims["timeGMT"]["data"] == sorted(dims["timeGMT"]["data"])
    assert all(t < NOW_MS / 1000 for t in dims["timeGMT"]["data"])  # seconds
    assert "" in dims["eVar5"]["data"] and any(dims["eVar7"]["data"])
    declared = [v for v in dims["eVar01"]["data"] if v]
    assert len(declared) >= 2 and len(set(declared)) == 1  # repeated per hit
    assert trigger["triggerPath"][-1]["stateId"] == "notify"
    assert trigger["triggerPath"][-1]["transition"] == "inactive_timeout -> 15"


def test_declared_shopper_id_is_the_visitors() -> None:
    item = draw(Mix(weights=((CART_ABANDONMENT, 1.0),), visitors=50, profiles=50), 9, 1)[0]
    assert item.envelope is not None
    trigger = item.envelope[PIPELINE_MESSAGE][TRIGGER]
    index = next(i for i in range(50) if shopper(i).mcid == trigger["mcId"])
    data = trigger["enrichments"]["analyticsHitSummary"]["dimensions"]["eVar01"]["data"]
    assert shopper(index).declared_id in data


def test_shares_of_repeats_malformed_unknown_and_unprofiled() -> None:
    mix = Mix(
        visitors=200,
        profiles=100,
        unprofiled_share=0.3,
        repeat_share=0.1,
        malformed_share=0.1,
        unknown_share=0.1,
    )
    items = draw(mix, 11, 2000)
    kinds: Counter[str] = Counter(item.kind for item in items)
    for kind, share in (("repeat", 0.1), ("malformed", 0.1), ("unknown", 0.08)):
        assert kinds[kind] / 2000 == pytest.approx(share, abs=0.03), kinds
    ids = [i.envelope[PIPELINE_MESSAGE]["header"].get("messageId") for i in items if i.envelope]
    repeats = [i for i in items if i.kind == "repeat"]
    assert all(
        ids.count(r.envelope[PIPELINE_MESSAGE]["header"]["messageId"]) >= 2  # type: ignore[index]
        for r in repeats
    )
    unknown = [i for i in items if i.kind == "unknown"]
    assert all(
        i.envelope[PIPELINE_MESSAGE][TRIGGER]["triggerId"] == UNKNOWN_TRIGGER_ID  # type: ignore[index]
        for i in unknown
    )
    mcids = {shopper(i).mcid: i for i in range(200)}
    fresh = [i for i in items if i.kind in ("trigger", "unknown")]
    unprofiled = [i for i in fresh if mcids[i.mcid] >= 100]
    assert len(unprofiled) / len(fresh) == pytest.approx(0.3, abs=0.04)


def test_malformed_envelopes_never_parse() -> None:
    items = [i for i in draw(Mix(malformed_share=1.0), 2, 60) if i.kind == "malformed"]
    assert len(items) == 60
    reasons: Counter[str] = Counter()
    for line in stamped_lines(items):
        assert b"\n" not in line
        with pytest.raises(InvalidInput) as caught:
            parse_envelope(line)
        reasons[caught.value.reason] += 1
    assert {
        "not_json",
        "not_an_object",
        "missing_field",
        "bad_field",
        "unknown_envelope_type",
    } <= set(reasons)


def test_stray_space_shopper_key() -> None:
    for item in draw(Mix(variability=Variability(stray_space_share=1.0)), 4, 10):
        assert item.envelope is not None
        dims = item.envelope[PIPELINE_MESSAGE][TRIGGER]["enrichments"]["analyticsHitSummary"][
            "dimensions"
        ]
        keys = [key for key in dims if key.strip() == "eVar01"]
        assert len(keys) == 1 and " eVar01" in (keys[0], dims[keys[0]]["name"])
        json.dumps(item.envelope)  # plain JSON types only


def test_distinct_visitors_come_in_turn() -> None:
    generator = TriggerGenerator(Mix(visitors=500, profiles=500, distinct_visitors=True), seed=3)
    declared = [generator.next(1_700_000_000_000).mcid for _ in range(500)]
    assert declared == [shopper(i).mcid for i in range(500)]
