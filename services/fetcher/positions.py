"""Upstream (partition, offset) of an envelope that may not parse, for its dead letter.

A dead letter that carries its position lets the pointer move past it, so the position is read
from whatever is readable: a decoded but invalid document, or the first bytes of a line too long
to parse at all.
"""

from __future__ import annotations

import re
from typing import Any

from services.fetcher.envelope_fields import MAX_LONG

_POSITION = re.compile(rb'"(partition|offset)"\s*:\s*"?(\d{1,18})\b')


def document_position(document: Any) -> tuple[int, int] | None:
    """Upstream (partition, offset) of a document that may be invalid, when both read as ints."""
    if isinstance(document, dict) and isinstance(document.get("event"), dict):
        document = document["event"]
    if not isinstance(document, dict):
        return None
    try:
        partition, offset = int(document["partition"]), int(document["offset"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    if 0 <= partition <= MAX_LONG and 0 <= offset <= MAX_LONG:
        return partition, offset
    return None


def position_hint(head: bytes) -> tuple[int, int] | None:
    """Best effort (partition, offset) from the start of a line too long to parse.

    Adobe's envelopes put both fields first, so the first 4 KiB normally name them.
    """
    found: dict[bytes, int] = {}
    for match in _POSITION.finditer(head[:4096]):
        found.setdefault(match.group(1), int(match.group(2)))
    if b"partition" in found and b"offset" in found:
        return found[b"partition"], found[b"offset"]
    return None
