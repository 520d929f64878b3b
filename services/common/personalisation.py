"""Personalisation values: read from the enrichments, typed, made safe, and capped.

Everything in a trigger's enrichments came from a visitor's browser: anyone who knows a
shopper's declared id can put a `javascript:` link in `pageURL` or a line break and a fake header
in `eVar7`, and have Triggerline mail the shopper a genuine-looking email carrying them. So no
value reaches a template unchecked:

- a link (`type: url`) is kept only if it is `https` (or `http` when the processor allows it)
  to a host on the campaign's `link_hosts`, has no user name and no characters a browser would
  reinterpret; it is written back from its parsed parts, with its query string. Otherwise the
  campaign's default link stands in.
- text (`type: text`, first names, product names) can end up in the Subject or a display name,
  so it is made safe for a header: only its first line is kept, control characters and bidi
  overrides are dropped, whitespace folds to one space, and the length is capped.

The processor calls these rules before it makes an email request; the mailer reuses
`declared_defaults` so a request made before a variable was declared still renders.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from services.common.campaign_config import Campaign
from services.common.enrichments import Enrichments
from services.common.personalisation_config import Variable

# The longest link kept: far beyond any real shop URL, and a longer one is refused, not cut (a
# cut link points somewhere else).
MAX_LINK_LENGTH = 2048

# Control characters except the whitespace ones (which fold to a space first), and the bidi
# embedding, override and isolate controls: an unclosed U+202E in a name would reverse the
# template's own text that follows it. The direction marks (U+200E, U+200F) stay.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"\s+")
# Characters no link we write may hold: whitespace and controls (header and line breaks), the
# backslash (browsers read it as `/`, so `https://shop.example\@evil.test` would leave the
# host), and the quotes and angle brackets that would end an attribute or a text-mode link.
_LINK_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\\<>\"`\u202a-\u202e\u2066-\u2069]")

Why = Literal["absent", "unsafe"]


def single_line(value: str, limit: int) -> str:
    """`value` made safe for a header and one line of text; empty when nothing usable is left.

    Only the first line is kept: a value from a single-line field (a name, a search box) never
    holds a line break, so what follows one is what a header injection would smuggle in
    (`boots\\r\\nBcc: x@evil.test` keeps `boots`). Then NFC normalisation, whitespace runs
    folded to one space, control characters and bidi overrides dropped, trimmed, and cut to
    `limit` characters.
    """
    lines = value.splitlines()
    text = unicodedata.normalize("NFC", lines[0] if lines else "")
    text = _CONTROLS.sub("", _SPACES.sub(" ", text)).strip()
    return text[:limit].rstrip()


def host_allowed(host: str, allowed: Collection[str]) -> bool:
    """Whether `host` is on the allow-list: an exact name, or under a `*.domain` entry (which
    does not cover the bare domain, so list both when both are wanted)."""
    host = host.lower().rstrip(".")
    return any(
        host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed
    )


def safe_link(
    value: str, allowed_hosts: Collection[str], allow_http: bool, limit: int
) -> str | None:
    """The link as it will be written, or `None` when the value may not be a link.

    Accepted: `https` (and `http` when `allow_http`) with a host on `allowed_hosts`, no user
    name or password, a valid port, at most `limit` characters and none of the characters
    above. The result is rebuilt from its parsed parts (scheme and host lower-case), so what
    the email carries is what was checked; the path, query string and fragment are kept.
    """
    text = value.strip()
    if not text or len(text) > limit or _LINK_UNSAFE.search(text):
        return None
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port  # `port` raises on a malformed one
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        return None
    if parts.username is not None or parts.password is not None or not host:
        return None
    if not host_allowed(host, allowed_hosts):
        return None
    netloc = host.rstrip(".") + (f":{port}" if port is not None else "")
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, parts.fragment))


@dataclass(frozen=True)
class LinkPolicy:
    """Where a campaign's links may point, and what stands in for one that may not."""

    hosts: tuple[str, ...] = ()
    default: str = ""
    allow_http: bool = False

    @classmethod
    def of(cls, campaign: Campaign, allow_http: bool = False) -> LinkPolicy:
        """The campaign's `link_hosts` and `default_link`; `allow_http` is the processor's."""
        return cls(campaign.link_hosts, campaign.default_link, allow_http)


@dataclass(frozen=True)
class Personalised:
    """Every declared variable with the value the templates will see.

    `fallbacks` names the variables that got their default instead of the trigger's value, and
    why (`absent` or `unsafe`), for metrics and logs.
    """

    values: dict[str, str]
    fallbacks: tuple[tuple[str, Why], ...] = field(default=())


@dataclass(frozen=True)
class MissingData:
    """A required variable without a usable value: the trigger ends `skipped:missing_data`."""

    variable: str
    why: Why

    def detail(self) -> dict[str, str]:
        """The outcome's detail: which variable, and whether it was absent or refused."""
        return {"variable": self.variable, "why": self.why}


def fallback(variable: Variable, links: LinkPolicy) -> str:
    """What a variable renders without a usable value: its default, else for a link the
    campaign's default link, else empty."""
    if variable.default is not None:
        return variable.default
    return links.default if variable.type == "url" else ""


def declared_defaults(declarations: Mapping[str, Variable], links: LinkPolicy) -> dict[str, str]:
    """Each declared variable's fallback value: what a template sees for a name a request lacks."""
    return {name: fallback(variable, links) for name, variable in declarations.items()}


def variable_value(
    enrichments: Enrichments, variable: Variable, links: LinkPolicy, max_length: int
) -> tuple[str | None, Why]:
    """The trigger's usable value for one variable, or `None` and why not.

    The first source dimension that is present wins (its first non-empty hit); if that value
    is refused, the variable has no value: later sources are not tried, so what a declaration
    means does not depend on which dimensions a visitor managed to fill.
    """
    raw = next((v for v in (enrichments.first(s) for s in variable.sources) if v is not None), None)
    if raw is None:
        return None, "absent"
    if variable.type == "url":
        limit = variable.max_length or MAX_LINK_LENGTH
        link = safe_link(raw, links.hosts, links.allow_http, limit)
        return link, "unsafe"
    text = single_line(raw, variable.max_length or max_length)
    return text or None, "unsafe"


def personalise(
    enrichments: Enrichments,
    declarations: Mapping[str, Variable],
    links: LinkPolicy,
    max_length: int,
) -> Personalised | MissingData:
    """Every declared variable's value, or the first required one that has none.

    A required variable never falls back to a default, so a campaign that cannot do without
    a value is skipped rather than sent half-empty; an optional one renders its `fallback`.
    """
    values: dict[str, str] = {}
    fallbacks: list[tuple[str, Why]] = []
    for name, variable in declarations.items():
        value, why = variable_value(enrichments, variable, links, max_length)
        if value is None:
            if variable.required:
                return MissingData(name, why)
            value = fallback(variable, links)
            fallbacks.append((name, why))
        values[name] = value
    return Personalised(values, tuple(fallbacks))


def safe_names(names: Collection[str], most: int, max_length: int) -> tuple[str, ...]:
    """Product names for a request: each made `single_line`, empties and repeats dropped, at
    most `most` of them, first seen first (a session can name thousands)."""
    kept: dict[str, None] = {}
    for name in names:
        if len(kept) >= most:
            break
        text = single_line(name, max_length)
        if text:
            kept[text] = None
    return tuple(kept)
