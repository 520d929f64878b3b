"""What to do with each parsed envelope, decided before anything is written.

The worker applies these decisions to its open Kafka transaction; here they are plain values, so
every case (replayed, foreign partition, rejected, ping) is tested without a broker.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from services.common.errors import InvalidInput
from services.fetcher.envelopes import Data, Parsed, Rejected, Sync
from services.fetcher.rules.cursor import Cursor


@dataclass(frozen=True)
class Write:
    """Produce the record to `triggers.raw` and move the partition's cursor past it."""

    data: Data


@dataclass(frozen=True)
class DeadLetter:
    """Produce the raw bytes to the dead-letter topic (and an `invalid` outcome)."""

    raw: bytes
    error: InvalidInput
    position: tuple[int, int] | None


@dataclass(frozen=True)
class Skip:
    """Already written before a restart: the pointer resumed below it to re-read a retry."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Ping:
    marker: str


Action = Write | DeadLetter | Skip | Ping


def decide(
    parsed: Parsed,
    cursors: Mapping[int, Cursor],
    owned: Collection[int],
    waiting: Collection[tuple[int, int]] = (),
) -> Action:
    """`waiting`: (partition, offset) of envelopes already queued for a retry, which a re-read
    after a reconnect brings again."""
    if isinstance(parsed, Sync):
        return Ping(parsed.marker)
    if isinstance(parsed, Rejected):
        position = parsed.position
        if position is not None and (position[0] not in owned or _behind(cursors, *position)):
            # A position the stream cannot be at is part of what is wrong with the line: it
            # is dead-lettered all the same, and the pointer does not move for it.
            position = None
        return DeadLetter(parsed.raw, parsed.error, position)
    if parsed.partition not in owned:
        error = InvalidInput(
            "unassigned_partition", f"partition {parsed.partition}, not among {sorted(owned)}"
        )
        return DeadLetter(parsed.raw, error, None)
    if _done(cursors, parsed.partition, parsed.offset) or (
        (parsed.partition, parsed.offset) in waiting
    ):
        return Skip(parsed.partition, parsed.offset)
    return Write(parsed)


def _behind(cursors: Mapping[int, Cursor], partition: int, offset: int) -> bool:
    cursor = cursors.get(partition)
    return cursor is not None and offset < cursor.next


def _done(cursors: Mapping[int, Cursor], partition: int, offset: int) -> bool:
    cursor = cursors.get(partition)
    return cursor is not None and cursor.done(offset)
