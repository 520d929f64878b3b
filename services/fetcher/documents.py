"""One upstream line -> the JSON documents it holds, and a bound on how deep they nest.

The stream's framing is unpublished: a line normally holds one JSON object, but back-to-back
objects (`{...}{...}` or separated by spaces) are split and read in order.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.common.errors import InvalidInput


def split_documents(line: bytes) -> list[tuple[Any, bytes]]:
    """The JSON values of a line with the bytes of each; `InvalidInput("not_json")` if any
    part is not JSON (the whole line is then one dead letter: nothing of it is trusted)."""
    try:
        return [(orjson.loads(line), line)]
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc):  # orjson's own limit, far past `max_depth`
            raise InvalidInput("too_deep", str(exc)[:300]) from None
        if not str(exc).startswith("unexpected content after document"):
            raise InvalidInput("not_json", str(exc)[:300]) from None
    # Rare: several objects on one line. orjson reports where the first one ends, in characters.
    try:
        text = line.decode()
    except UnicodeDecodeError as exc:
        raise InvalidInput("not_json", f"not UTF-8: {exc}") from None
    documents: list[tuple[Any, bytes]] = []
    while text.strip():
        try:
            documents.append((orjson.loads(text), text.encode()))
            break
        except orjson.JSONDecodeError as exc:
            if not str(exc).startswith("unexpected content after document"):
                raise InvalidInput("not_json", str(exc)[:300]) from None
            first, text = text[: exc.pos], text[exc.pos :].lstrip()
            documents.append((orjson.loads(first), first.encode()))
    return documents


def deeper_than(document: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels; iterative, so any depth is safe."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((child, depth + 1) for child in value.values() if _container(child))
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value if _container(child))
    return False


def _container(value: Any) -> bool:
    return isinstance(value, dict | list)
