"""Long `IN (...)` lists cut into slices that every database accepts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Values per `IN (...)` list: well inside every dialect's bound-parameter limit (SQLite's
# default is 999 in older builds, PostgreSQL's 65535).
IN_LIST_SIZE = 500


def in_chunks(values: Sequence[T], size: int = IN_LIST_SIZE) -> Iterator[Sequence[T]]:
    """`values` in order, at most `size` at a time."""
    for start in range(0, len(values), size):
        yield values[start : start + size]
