"""Adobe's variability in generated triggers: each share makes its shape, the defaults a mix."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from dataclasses import fields, replace
from typing import Any

import pytest

from services.common.enrichments import enrichments_from_document
from services.common.errors import ConfigurationError
from services.common.settings import load
from services.ops.stack_environment import StackOptions, local_environment
from services.simulator.catalog import SEARCH_ABANDONMENT, TRIGGER_TYPES
from services.simulator.feed import mix_from
from services.simulator.generator import PIPELINE_MESSAGE, TRIGGER, Generated, Mix, TriggerGenerator
from services.simulator.population import shopper
from services.simulator.settings import SimulatorSettings
from services.simulator.state import SimulatorState
from services.simulator.variability import (
    HUGE_HITS,
    NON_ASCII_NAMES,
    ZERO_MCID,
    Variability,
)

NOW_MS = 1_790_000_000_000
ALL_TYPES = tuple((t, 1.0) for t in TRIGGER_TYPES)
VISITORS = 100
KNOWN_MCIDS = {shopper(i).mcid: i for i in range(VISITORS)}
KNOWN_DECLARED = {shopper(i).declared_id: i for i in range(VISITORS)}
OPTIONAL = ("pageURL", "eVar5", "eVar7")
EXTRA = ("eVar42", "prop9", "list3", "eVar99", "mobileDeviceType")


def draw(variability: Variability, count: int, seed: int = 3, **mix: Any) -> list[Generated]:
    settings: dict[str, Any] = {"visitors": VISITORS, "profiles": VISITORS, "weights": ALL_TYPES}
    generator = TriggerGenerator(Mix(variability=variability, **(settings | mix)), seed)
    return [generator.next(NOW_MS + i) for i in range(count)]


def trigger_of(item: Generated) -> dict[str, Any]:
    assert item.envelope is not None
    trigger: dict[str, Any] = item.envelope[PIPELINE_MESSAGE][TRIGGER]
    return trigger


def dimensions_of(item: Generated) -> dict[str, Any]:
    summary = trigger_of(item)["enrichments"]["analyticsHitSummary"]
    dimensions: dict[str, Any] = summary["dimensions"]
    return dimensions


def declared_id(item: Generated) -> str | None:
    """The declared id as the processor reads it: keys whitespace-stripped, first non-empty hit."""
    return enrichments_from_document(trigger_of(item)["enrichments"]).first("eVar01")


def resolved_visitor(item: Generated) -> int | None:
    """The demo visitor a trigger's identities lead to, as `db seed` links them, or None."""
    mcid = trigger_of(item).get("mcId")
    if isinstance(mcid, str) and mcid in KNOWN_MCIDS:
        return KNOWN_MCIDS[mcid]
    return KNOWN_DECLARED.get(declared_id(item) or "")


def realistic() -> Variability:
    """The settings' defaults, read from the fields so no environment variable can change them."""
    defaults = SimulatorSettings.model_fields
    return Variability(**{f.name: defaults[f.name].default for f in fields(Variability)})


@pytest.mark.parametrize(
    ("share", "expected"),
    [("no_mcid_share", None), ("zero_mcid_share", ZERO_MCID), ("empty_mcid_share", "")],
)
def test_each_mcid_share_makes_its_form_and_keeps_the_declared_id(
    share: str, expected: str | None
) -> None:
    for item in draw(Variability(**{share: 1.0}), 50):
        trigger = trigger_of(item)
        if expected is None:
            assert "mcId" not in trigger
        else:
            assert trigger["mcId"] == expected
        assert declared_id(item) == shopper(KNOWN_MCIDS[item.mcid]).declared_id


def test_declared_only_carries_an_unlinked_browser_and_the_declared_id() -> None:
    mcids = set()
    for item in draw(Variability(declared_only_share=1.0), 200):
        mcid = trigger_of(item)["mcId"]
        assert len(mcid) == 38 and mcid.isdigit() and mcid.strip("0")
        assert mcid not in KNOWN_MCIDS
        assert declared_id(item) == shopper(KNOWN_MCIDS[item.mcid]).declared_id
        mcids.add(mcid)
    assert len(mcids) == 200  # a new browser each time, not one shared value


def test_identity_forms_follow_their_shares() -> None:
    mix = Variability(no_mcid_share=0.1, zero_mcid_share=0.2, empty_mcid_share=0.1)
    mix = replace(mix, declared_only_share=0.3)
    forms: Counter[str] = Counter()
    for item in draw(mix, 4000):
        mcid = trigger_of(item).get("mcId")
        forms[
            "absent"
            if mcid is None
            else "zero"
            if mcid == ZERO_MCID
            else "empty"
            if mcid == ""
            else "known"
            if mcid in KNOWN_MCIDS
            else "unlinked"
        ] += 1
    expected = {"absent": 0.1, "zero": 0.2, "empty": 0.1, "unlinked": 0.3, "known": 0.3}
    for form, share in expected.items():
        assert forms[form] / 4000 == pytest.approx(share, abs=0.03), forms


@pytest.mark.parametrize(
    ("share", "gone"),
    [
        ("missing_page_url_share", "pageURL"),
        ("missing_products_share", "eVar5"),
        ("missing_search_terms_share", "eVar7"),
    ],
)
def test_each_optional_dimension_goes_missing_on_its_own(share: str, gone: str) -> None:
    items = draw(Variability(**{share: 1.0}), 80, weights=((SEARCH_ABANDONMENT, 1.0),))
    for item in items:
        dimensions = dimensions_of(item)
        assert gone not in dimensions
        assert {"eVar01", "timeGMT", *OPTIONAL} - {gone} <= set(dimensions)
        summary = trigger_of(item)["enrichments"]["analyticsHitSummary"]
        assert ("products" in summary) is (gone != "eVar5")


def test_missing_dimensions_are_drawn_independently() -> None:
    mix = Variability(
        missing_page_url_share=0.5, missing_products_share=0.5, missing_search_terms_share=0.5
    )
    combos = Counter(
        tuple(name in dimensions_of(i) for name in OPTIONAL)
        for i in draw(mix, 800, weights=((SEARCH_ABANDONMENT, 1.0),))
    )
    assert len(combos) == 8  # every combination of the three occurs
    for count in combos.values():
        assert count / 800 == pytest.approx(1 / 8, abs=0.05), combos


def test_extra_dimensions_are_unknown_and_oddly_typed() -> None:
    seen: Counter[str] = Counter()
    for item in draw(Variability(extra_dimensions_share=1.0), 100):
        extra = set(dimensions_of(item)) & set(EXTRA)
        assert extra
        seen.update(extra)
        assert declared_id(item) is not None
        json.dumps(item.envelope, allow_nan=False)
    assert set(seen) == set(EXTRA)
    dims = {
        name: dimension
        for item in draw(Variability(extra_dimensions_share=1.0), 100)
        for name, dimension in dimensions_of(item).items()
    }
    assert not isinstance(dims["eVar99"]["data"], list)
    assert "data" not in dims["mobileDeviceType"]
    assert any(not isinstance(v, str) for v in dims["eVar42"]["data"])
    assert all(isinstance(v, list) for v in dims["list3"]["data"])
    assert dims["prop9"]["type"] == "int" and all(isinstance(v, str) for v in dims["prop9"]["data"])


def test_stray_space_spells_the_declared_key_every_way() -> None:
    spellings: Counter[tuple[str, str]] = Counter()
    for item in draw(Variability(stray_space_share=1.0), 90):
        dims = dimensions_of(item)
        key = next(k for k in dims if k.strip() == "eVar01")
        spellings[(key, dims[key]["name"])] += 1
        assert declared_id(item) == shopper(KNOWN_MCIDS[item.mcid]).declared_id
    assert set(spellings) == {(" eVar01", " eVar01"), ("eVar01", " eVar01"), (" eVar01", "eVar01")}


def test_huge_arrays_hold_thousands_of_hits_and_stay_well_under_1_mb() -> None:
    everything = Variability(
        huge_arrays_share=1.0, non_ascii_share=1.0, extra_dimensions_share=1.0
    )  # the largest envelopes the generator can make
    sizes = []
    for item in draw(everything, 60, weights=((SEARCH_ABANDONMENT, 1.0),)):
        dims = dimensions_of(item)
        hits = len(dims["timeGMT"]["data"])
        assert HUGE_HITS[0] <= hits < HUGE_HITS[1] + 20  # whole sessions repeated
        for name in ("eVar01", "pageURL", "eVar5", "eVar7"):
            data = dims[name]["data"]
            assert len(data) == hits and len(set(data)) < hits / 100  # repeats
            assert name == "eVar01" or data.count("") >= hits / 3  # hits without the variable
        assert dims["timeGMT"]["data"] == sorted(dims["timeGMT"]["data"])
        sizes.append(len(json.dumps(item.envelope).encode()))  # \u escapes: the larger form
    assert max(sizes) < 600_000, max(sizes)


def _scripts(text: str) -> set[str]:
    found = set()
    for char in text:
        if unicodedata.bidirectional(char) in ("R", "AL"):
            found.add("rtl")
        elif unicodedata.combining(char):
            found.add("combining")
        elif unicodedata.category(char) == "So":
            found.add("emoji")
    return found


def test_non_ascii_values_cover_rtl_emoji_and_combining_marks_without_nul() -> None:
    found: set[str] = set()
    items = draw(Variability(non_ascii_share=1.0), 200)
    for item in items:
        dims = dimensions_of(item)
        text = json.dumps(dims, ensure_ascii=False)
        assert "\x00" not in text
        assert not dims["pageURL"]["data"][0].isascii()
        names = [n for n in dims["eVar5"]["data"] if n]
        assert names and all(n in NON_ASCII_NAMES for n in names)
        assert all("," not in n and ";" not in n for n in names)  # Adobe's products separators
        if "eVar7" in dims:
            assert not any(t.isascii() for t in dims["eVar7"]["data"] if t)
        found |= _scripts(text)
        assert declared_id(item) == shopper(KNOWN_MCIDS[item.mcid]).declared_id
    assert found == {"rtl", "combining", "emoji"}


def test_settings_default_to_a_realistic_mix_that_the_generator_uses() -> None:
    variability = realistic()
    assert mix_from(SimulatorSettings.model_construct()).variability == variability
    assert 0.3 <= variability.identity_total() <= 0.7
    assert variability.declared_only_share >= 0.2 and variability.zero_mcid_share >= 0.05
    for name in ("missing_page_url_share", "missing_products_share", "missing_search_terms_share"):
        assert 0.1 <= getattr(variability, name) <= 0.2
    for name in ("huge_arrays_share", "non_ascii_share", "stray_space_share"):
        assert 0 < getattr(variability, name) <= 0.05
    assert 0 < variability.extra_dimensions_share <= 0.2


def test_the_default_mix_shows_every_trait_and_every_trigger_finds_its_shopper() -> None:
    items = draw(realistic(), 3000, seed=11)
    assert items == draw(realistic(), 3000, seed=11)  # deterministic from the seed
    traits: Counter[str] = Counter()
    for item in items:
        trigger, dims = trigger_of(item), dimensions_of(item)
        mcid = trigger.get("mcId")
        traits["no_mcid"] += mcid is None
        traits["zero_mcid"] += mcid == ZERO_MCID
        traits["empty_mcid"] += mcid == ""
        traits["declared_only"] += bool(mcid and mcid.strip("0") and mcid not in KNOWN_MCIDS)
        traits["tidy_mcid"] += mcid in KNOWN_MCIDS
        traits["no_page_url"] += "pageURL" not in dims
        traits["no_products"] += "eVar5" not in dims
        traits["extra"] += bool(set(dims) & set(EXTRA))
        traits["stray"] += any(k != k.strip() or d["name"] != k.strip() for k, d in dims.items())
        traits["huge"] += len(dims["timeGMT"]["data"]) >= HUGE_HITS[0]
        traits["non_ascii"] += not json.dumps(dims, ensure_ascii=False).isascii()
        assert resolved_visitor(item) == KNOWN_MCIDS[item.mcid], trigger
    variability = realistic()
    expected = {
        "no_mcid": variability.no_mcid_share,
        "zero_mcid": variability.zero_mcid_share,
        "empty_mcid": variability.empty_mcid_share,
        "declared_only": variability.declared_only_share,
        "tidy_mcid": 1 - variability.identity_total(),
        "no_page_url": variability.missing_page_url_share,
        "no_products": variability.missing_products_share,
        "extra": variability.extra_dimensions_share,
        "stray": variability.stray_space_share,
        "huge": variability.huge_arrays_share,
        "non_ascii": variability.non_ascii_share,
    }
    for trait, share in expected.items():
        assert traits[trait] / 3000 == pytest.approx(share, abs=0.025), (trait, traits)


def test_unprofiled_visitors_still_carry_an_identity() -> None:
    """Their ids are unknown to `db seed` (an `unmatched` outcome), never absent altogether."""
    unprofiled = {shopper(i).mcid: i for i in range(VISITORS, 2 * VISITORS)}
    items = draw(realistic(), 500, visitors=2 * VISITORS, unprofiled_share=1.0)
    for item in items:
        assert resolved_visitor(item) is None
        assert declared_id(item) == shopper(unprofiled[item.mcid]).declared_id


def test_tidy_mix_is_unchanged_by_the_variability_machinery() -> None:
    for item in draw(Variability(), 200):
        dims = dimensions_of(item)
        assert trigger_of(item)["mcId"] in KNOWN_MCIDS
        assert (
            {"eVar01", "timeGMT", "pageURL", "eVar5"}
            <= set(dims)
            <= {*OPTIONAL, "eVar01", "timeGMT"}
        )
        assert not set(dims) & set(EXTRA) and len(dims["timeGMT"]["data"]) < 20
        assert json.dumps(dims, ensure_ascii=False).isascii()


@pytest.mark.parametrize(
    "bad",
    [
        {"huge_arrays_share": 1.5},
        {"non_ascii_share": -0.1},
        {"zero_mcid_share": 0.6, "declared_only_share": 0.6},
    ],
)
def test_shares_are_validated(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="share"):
        Variability(**bad)
    with pytest.raises(ConfigurationError, match="SHARE"):
        load(SimulatorSettings, bad)


def test_the_local_stack_leaves_the_shares_at_their_defaults(tmp_path: Any) -> None:
    options = StackOptions(
        triggers=1, rate=1, profiles=1, seed=1, var=tmp_path, timeout=1, fresh=False
    )
    overridden = [n for n in local_environment(options, "x") if n.endswith("_SHARE")]
    assert overridden == []


def test_triggers_without_a_real_mcid_spread_over_the_upstream_partitions() -> None:
    state = SimulatorState(SimulatorSettings.model_construct())
    for share in ("no_mcid_share", "zero_mcid_share", "empty_mcid_share"):
        partitions = {
            state.partition_of(i.envelope or {}) for i in draw(Variability(**{share: 1.0}), 60)
        }
        assert len(partitions) > 5, share
