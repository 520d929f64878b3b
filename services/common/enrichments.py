"""Reading Adobe's enrichments object: dimension values and products, quirks absorbed.

The fetcher keeps `trigger.enrichments` as verbatim JSON text. Upstream quirks handled here:
dimension keys may carry stray whitespace (`" eVar01"`), and `dimensions.<var>.data` holds one
entry per hit of the session, with repeats and empty strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.common.errors import InvalidInput


@dataclass(frozen=True)
class Enrichments:
    """The per-hit values of every dimension, keyed by whitespace-stripped name."""

    hits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    products_object: tuple[str, ...] = ()

    def first(self, name: str) -> str | None:
        """The first non-empty hit value of a dimension: the session's earliest known value."""
        values = self.hits.get(name.strip(), ())
        return values[0] if values else None

    def distinct(self, name: str) -> tuple[str, ...]:
        """Every non-empty hit value of a dimension, each once, first seen first."""
        return tuple(dict.fromkeys(self.hits.get(name.strip(), ())))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = str(value).strip()
    return text or None


def _hit_values(data: Any) -> tuple[str, ...]:
    if not isinstance(data, list):
        data = [data]
    return tuple(text for text in (_text(item) for item in data) if text is not None)


def parse_enrichments(text: str) -> Enrichments:
    """Parse the verbatim enrichments JSON; a non-JSON text is `InvalidInput`.

    Absent or oddly shaped parts stay empty rather than failing: dimensions vary per trigger.
    When two keys differ only by whitespace, their hits are joined in document order.
    """
    if not text.strip():
        return Enrichments()
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput("bad_enrichments", f"enrichments are not JSON: {exc}") from None
    return enrichments_from_document(document)


def enrichments_from_document(document: Any) -> Enrichments:
    """The same reading of an already decoded enrichments object (the fetcher has one)."""
    if not isinstance(document, dict):
        return Enrichments()
    summary = document.get("analyticsHitSummary")
    if not isinstance(summary, dict):
        return Enrichments()
    hits: dict[str, tuple[str, ...]] = {}
    dimensions = summary.get("dimensions")
    if isinstance(dimensions, dict):
        for key, dimension in dimensions.items():
            if not isinstance(dimension, dict):
                continue
            name = str(key).strip()
            hits[name] = hits.get(name, ()) + _hit_values(dimension.get("data"))
    return Enrichments(hits=hits, products_object=_products_object(summary.get("products")))


def _products_object(products: Any) -> tuple[str, ...]:
    """`analyticsHitSummary.products`: `{}` in every published sample; names if it holds any."""
    if isinstance(products, dict):
        return tuple(text for text in (_text(key) for key in products) if text)
    if isinstance(products, list):
        return _hit_values(products)
    return ()


def product_names(value: str) -> list[str]:
    """Product names in one value: Adobe's `Category;Name;Qty;Price,...` list, or plain names."""
    names = []
    for entry in value.split(","):
        fields = entry.split(";")
        name = (fields[1] if len(fields) > 1 else fields[0]).strip()
        if name:
            names.append(name)
    return names


def products(enrichments: Enrichments, dimensions: Iterable[str]) -> tuple[str, ...]:
    """Products named by the trigger, first seen first, each once.

    `products` means the hit summary's products object when it holds anything, else a
    dimension of that name; other names are dimensions read with Adobe's products syntax.
    """
    found: dict[str, None] = {}
    for dimension in dimensions:
        if dimension.strip() == "products" and enrichments.products_object:
            found.update(dict.fromkeys(enrichments.products_object))
            continue
        for value in enrichments.distinct(dimension):
            found.update(dict.fromkeys(product_names(value)))
    return tuple(found)


def first_hit(document: Any, names: Iterable[str]) -> str | None:
    """The first non-empty hit value of the first named dimension that has one.

    Reads a decoded enrichments object the way `Enrichments.first` reads a parsed one
    (whitespace-stripped keys, empty hits skipped), touching only the named dimensions: the
    fetcher asks this of every envelope, so it does not build the whole `Enrichments`.
    """
    summary = document.get("analyticsHitSummary") if isinstance(document, dict) else None
    dimensions = summary.get("dimensions") if isinstance(summary, dict) else None
    if not isinstance(dimensions, dict):
        return None
    for name in names:
        wanted = name.strip()
        for key, dimension in dimensions.items():
            if str(key).strip() != wanted or not isinstance(dimension, dict):
                continue
            data = dimension.get("data")
            for item in data if isinstance(data, list) else [data]:
                text = _text(item)
                if text is not None:
                    return text
    return None
