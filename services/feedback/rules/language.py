"""Which language a page is shown in: an explicit choice, else the browser's preferences."""

from __future__ import annotations

from collections.abc import Sequence


def choose_language(
    requested: str | None, accept_language: str | None, available: Sequence[str], default: str
) -> str:
    """`requested` (the page's `lang` parameter) if available, else the best match of the
    `Accept-Language` header (RFC 9110: quality values, `fr-CH` falls back to `fr`), else
    `default`. Malformed entries are skipped, never an error."""
    offered = {code.lower(): code for code in available}
    if requested and requested.strip().lower() in offered:
        return offered[requested.strip().lower()]
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        if not tag:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        for candidate in (tag, tag.split("-", 1)[0]):
            if candidate in offered:
                return offered[candidate]
    return default
