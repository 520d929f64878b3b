"""How generated triggers stray from the tidy shape, as Adobe's do (section 4.4 of the contract).

Adobe publishes an all-zero `mcId`, dimensions that vary per trigger, a stray-space `" eVar01"`,
per-hit arrays full of repeats and empty strings. `Variability` holds the share of triggers
showing each trait; `draw_shape` picks one trigger's traits; `shaped_columns` and
`dimension_objects` build its dimensions. All pure: the caller's seeded `random.Random` decides.

Every trait keeps the shopper findable: the declared id stays in `eVar01` whatever happens to the
`mcId`, so a visitor with a demo profile always has one identity `triggerline db seed` knows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Literal

from services.simulator import products

IdentityForm = Literal["mcid_and_declared", "no_mcid", "zero_mcid", "empty_mcid", "declared_only"]
StraySpace = Literal["key", "name", "key_and_name"]

ZERO_MCID = "0" * 38  # Adobe's own published trigger carries this placeholder
DECLARED_KEY = "eVar01"
# A huge session has this many hits; ~110 bytes a hit keeps the envelope near 450 kB at most,
# well under upstream's 1 MB per message even with JSON's \u escapes of the few non-ASCII values.
HUGE_HITS = (2000, 4000)
_STRAY: tuple[StraySpace, ...] = ("key", "name", "key_and_name")

# Non-ASCII stand-ins: right-to-left scripts, emoji (with ZWJ and variation selectors), combining
# marks, CJK, bidi marks. Never NUL, and never "," or ";" (Adobe's products-list separators).
NON_ASCII_NAMES: tuple[str, ...] = (
    "נעלי ריצת שטח",  # Hebrew, RTL
    "حذاء الجري على الطرق الوعرة",  # Arabic, RTL
    "Trail shoes 👟🏔️",
    "Family pack 👩‍👩‍👧‍👦",  # ZWJ sequence
    "Chaussures le\u0301ge\u0300res",  # combining acute and grave, not precomposed
    "Z\u0351\u036b\u0343\u036a\u0302ip jacket",  # stacked combining marks
    "トレイルランニングシューズ",
    "Рюкзак 20 л",
    "Mixed \u200fשטח\u200e 5 L",  # noqa: RUF001 - RLM/LRM around an RTL word, on purpose
)
NON_ASCII_TERMS: tuple[str, ...] = ("נעליים", "حذاء", "登山靴", "ko\u0308rper warm", "🏃 shoes")
NON_ASCII_PAGE = f"{products.SHOP}/catégorie/randonnée"  # an IRI, not percent-encoded


@dataclass(frozen=True)
class Variability:
    """Share of generated triggers showing each trait; each is a probability per trigger.

    The identity forms exclude one another (their sum is at most 1; the rest carry a known
    visitor's mcId and the declared id); every other trait is drawn independently. All zero:
    the tidy stream, which tests and benchmarks start from. The simulator's settings default to
    a realistic mix instead.
    """

    no_mcid_share: float = 0.0  # the mcId key is absent
    zero_mcid_share: float = 0.0  # mcId "000...0" (38 zeros), as Adobe's sample
    empty_mcid_share: float = 0.0  # mcId ""
    declared_only_share: float = 0.0  # mcId of a browser no profile is linked to
    missing_page_url_share: float = 0.0
    missing_products_share: float = 0.0  # eVar5 and the hit summary's `products` object
    missing_search_terms_share: float = 0.0  # eVar7, of search abandonments (the only ones)
    extra_dimensions_share: float = 0.0  # eVar42, prop9, list3... with odd types
    stray_space_share: float = 0.0  # " eVar01" as key, as name, or both
    huge_arrays_share: float = 0.0  # thousands of hits per per-hit array
    non_ascii_share: float = 0.0  # product names, search terms, a page URL

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{field.name} must be a fraction between 0 and 1, got {value}")
        if self.identity_total() > 1.0:
            raise ValueError(
                "no_mcid_share + zero_mcid_share + empty_mcid_share + declared_only_share "
                f"must not exceed 1 (got {self.identity_total():.3f}); lower one of them"
            )

    @cached_property
    def only_stray_space(self) -> bool:
        """Every share but `stray_space_share` is 0: one roll decides a trigger's shape."""
        return all(
            getattr(self, f.name) == 0 for f in fields(self) if f.name != "stray_space_share"
        )

    def identity_total(self) -> float:
        return (
            self.no_mcid_share
            + self.zero_mcid_share
            + self.empty_mcid_share
            + self.declared_only_share
        )


@dataclass(frozen=True)
class Shape:
    """The traits of one trigger; the default is the tidy shape."""

    identity: IdentityForm = "mcid_and_declared"
    page_url: bool = True
    products: bool = True
    search_terms: bool = True
    extra_dimensions: bool = False
    stray_space: StraySpace | None = None
    huge_arrays: bool = False
    non_ascii: bool = False


TIDY = Shape()


def draw_shape(rng: random.Random, variability: Variability) -> Shape:
    """One trigger's traits. A share of 0 draws nothing, so a tidy mix consumes exactly one
    random number here (the stray-space roll) and its stream stays what it always was."""
    v = variability
    stray = rng.random() < v.stray_space_share
    if v.only_stray_space:  # the common tidy case, kept cheap for benchmarks
        return Shape(stray_space=rng.choice(_STRAY)) if stray else TIDY
    return Shape(
        identity=_identity_form(rng, v),
        page_url=not _happens(rng, v.missing_page_url_share),
        products=not _happens(rng, v.missing_products_share),
        search_terms=not _happens(rng, v.missing_search_terms_share),
        extra_dimensions=_happens(rng, v.extra_dimensions_share),
        stray_space=rng.choice(_STRAY) if stray else None,
        huge_arrays=_happens(rng, v.huge_arrays_share),
        non_ascii=_happens(rng, v.non_ascii_share),
    )


def _happens(rng: random.Random, share: float) -> bool:
    return share > 0 and rng.random() < share


def _identity_form(rng: random.Random, v: Variability) -> IdentityForm:
    if v.identity_total() <= 0:
        return "mcid_and_declared"
    forms: tuple[tuple[IdentityForm, float], ...] = (
        ("no_mcid", v.no_mcid_share),
        ("zero_mcid", v.zero_mcid_share),
        ("empty_mcid", v.empty_mcid_share),
        ("declared_only", v.declared_only_share),
    )
    point = rng.random()
    for form, share in forms:
        point -= share
        if point < 0:
            return form
    return "mcid_and_declared"


def mc_id_for(rng: random.Random, form: IdentityForm, visitor_mcid: str) -> str | None:
    """The trigger's `mcId` value (`None`: the key is left out)."""
    if form == "no_mcid":
        return None
    if form == "zero_mcid":
        return ZERO_MCID
    if form == "empty_mcid":
        return ""
    if form == "declared_only":
        # A browser Campaign never linked to anyone: 38 digits, never all zeros, and with odds
        # of about 1e-35 per visitor of matching a demo profile's mcId.
        return str(rng.randrange(10**37, 10**38))
    return visitor_mcid


def shaped_columns(
    rng: random.Random, shape: Shape, columns: dict[str, list[Any]]
) -> dict[str, list[Any]]:
    """The per-hit value lists (dimension name -> one value per hit) with `shape` applied:
    non-ASCII values, huge arrays, then absent dimensions. `columns` is not modified."""
    tidy = shape.page_url and shape.products and shape.search_terms
    if tidy and not (shape.non_ascii or shape.huge_arrays):
        return columns
    result = dict(columns)
    if shape.non_ascii:
        result = _non_ascii(rng, result)
    if shape.huge_arrays:
        result = _huge(rng, result)
    if not shape.page_url:
        result.pop("pageURL", None)
    if not shape.products:
        result.pop("eVar5", None)
    if not shape.search_terms:
        result.pop("eVar7", None)
    return result


def dimension_objects(
    rng: random.Random, shape: Shape, columns: dict[str, list[Any]]
) -> dict[str, Any]:
    """Adobe's `dimensions` object: `{type, name, source, data}` per column, the declared id's
    key and name spelled as `shape.stray_space` says, and unknown dimensions when asked."""
    dimensions: dict[str, Any] = {}
    for name, data in columns.items():
        key = label = name
        if name == DECLARED_KEY and shape.stray_space is not None:
            stray = f" {name}"
            key = stray if shape.stray_space in ("key", "key_and_name") else name
            label = stray if shape.stray_space in ("name", "key_and_name") else name
        kind = "int" if name == "timeGMT" else "string"
        dimensions[key] = {"type": kind, "name": label, "source": "session summary", "data": data}
    if shape.extra_dimensions:
        hits = len(columns["timeGMT"])
        for name in rng.sample(sorted(_EXTRA), rng.randint(1, len(_EXTRA))):
            dimensions[name] = _EXTRA[name](hits)
    return dimensions


def _non_ascii(rng: random.Random, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Product names and search terms become non-ASCII, and so does the first (browse) page."""
    result = dict(columns)
    names = {name: rng.choice(NON_ASCII_NAMES) for name in dict.fromkeys(columns["eVar5"]) if name}
    result["eVar5"] = [names.get(name, name) for name in columns["eVar5"]]
    if "eVar7" in columns:
        term = rng.choice(NON_ASCII_TERMS)
        result["eVar7"] = [term if value else "" for value in columns["eVar7"]]
        search = products.search_url(term)
        result["pageURL"] = [search if "/search?" in u else u for u in columns["pageURL"]]
    result["pageURL"] = [NON_ASCII_PAGE, *result["pageURL"][1:]]
    return result


def _huge(rng: random.Random, columns: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """A session of thousands of hits: each hit repeated (reloads, events on one page) with the
    same declared id and time, the page on every other repeat (link-tracking hits carry none, as
    in Adobe's sample), and an empty string wherever a repeat lacks the variable."""
    hits = len(columns["timeGMT"])
    repeat = -(-rng.randint(*HUGE_HITS) // hits)  # ceiling division
    result: dict[str, list[Any]] = {}
    for name, data in columns.items():
        column: list[Any] = []
        for value in data:
            if name in ("eVar01", "timeGMT"):  # set on every hit of the session
                column.extend([value] * repeat)
            elif name == "pageURL":
                column.extend([value, ""] * (repeat // 2) + [value] * (repeat % 2))
            else:
                column.append(value)
                column.extend([""] * (repeat - 1))
        result[name] = column
    return result


def _odd_number_strings(hits: int) -> dict[str, Any]:
    data = [str(i * 7) if i % 3 else "" for i in range(hits)]
    data[-1] = "7.5"
    return {"type": "int", "name": "prop9", "source": "session summary", "data": data}


def _mixed_values(hits: int) -> dict[str, Any]:
    data: list[Any] = [42, None, True, "", {"nested": "object"}, 3.25]
    return {"type": "string", "name": "eVar42", "source": "session summary", "data": data[:hits]}


def _list_values(hits: int) -> dict[str, Any]:
    data: list[Any] = [["red", "blue"], [], ["green"]] * hits
    return {"type": "list", "name": "list3", "source": "session summary", "data": data[:hits]}


def _scalar_data(_hits: int) -> dict[str, Any]:
    return {"type": "string", "name": "eVar99", "data": "not a per-hit list"}  # no source


def _no_data(_hits: int) -> dict[str, Any]:
    return {"type": "enum", "name": "mobileDeviceType", "source": "session summary"}


_EXTRA = {
    "prop9": _odd_number_strings,
    "eVar42": _mixed_values,
    "list3": _list_values,
    "eVar99": _scalar_data,
    "mobileDeviceType": _no_data,
}
