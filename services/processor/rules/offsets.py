"""Offset arithmetic for the processor's input: which offsets a commit may pass, and when not.

A topic written in Kafka transactions has offsets that carry no record for a `read_committed`
reader: commit/abort markers and the records of aborted transactions. A reader that commits
"last processed record + 1" therefore never commits past a trailing marker (lag stays at one per
partition) and, in faust, stops committing after an aborted batch (faust-streaming #606); faust's
"first run of acked offsets" may also start past a record not yet handled (`next_commit`).

The converse matters as much: a record that was fetched but never reached an agent must not be
passed over, or its trigger is lost (`held_back`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

P = TypeVar("P")  # a topic partition, whatever the client's type for it


def non_record_ranges(start: int, end: int, records: Iterable[int]) -> list[tuple[int, int]]:
    """Offsets in `[start, end)` that held no record delivered to us, as inclusive ranges.

    `start` is the fetch position before a fetch, `end` the position after it and `records` the
    offsets that fetch returned: every other offset in between was skipped by the client, so it
    is a control marker or an aborted record and can be committed past.
    """
    ranges: list[tuple[int, int]] = []
    cursor = start
    for offset in sorted(o for o in records if start <= o < end):
        if offset > cursor:
            ranges.append((cursor, offset - 1))
        cursor = offset + 1
    if cursor < end:
        ranges.append((cursor, end - 1))
    return ranges


def next_commit(base: int, acked: Iterable[int], gaps: Sequence[tuple[int, int]]) -> int:
    """The offset to commit: from `base` (the committed offset, the next one to read) over every
    offset that was handled (`acked`) or holds no record (`gaps`, inclusive ranges), up to the
    first that is neither.

    faust's own arithmetic takes the first run of acked offsets wherever it starts: with `base`
    itself unhandled and `base + 1` acked it commits past `base` (its head-gap test is off by
    one, and skipped for a committed offset of 0), and the record at `base` is never read
    again. Here a hole at `base` means no commit; a trailing marker after the last record is
    passed, which brings lag to zero.
    """
    done = set(acked)
    ranges = sorted(gaps)
    offset, at = base, 0
    while True:
        while at < len(ranges) and ranges[at][1] < offset:
            at += 1  # ranges wholly behind: the offset only moves forward
        if offset in done:
            offset += 1
        elif at < len(ranges) and ranges[at][0] <= offset:
            offset = ranges[at][1] + 1
        else:
            return offset


def uncommitted_part(first: int, last: int, committed: int | None) -> tuple[int, int] | None:
    """The part of a non-record range (inclusive) at or after the committed offset, if any.

    A committed offset is the next offset to read, so the committed offset itself is still to be
    passed. faust's own gap bookkeeping clamps at `committed + 1`, which drops exactly that
    offset when a burst's trailing markers are fetched after the commit of its last record: the
    commit then stands in front of a gap it may not cross and the lag stays.
    """
    if committed is not None:
        first = max(first, committed)
    return (first, last) if first <= last else None


def held_back(
    fetched: Mapping[P, Sequence[int]],
    positions: Mapping[P, int],
    streams_flowing: bool,
    feeds_streams: Callable[[P], bool],
) -> dict[P, int]:
    """The partitions whose fetched records no agent may see yet, each with the offset to fetch
    again from; empty while the streams flow.

    `fetched` maps each partition to the offsets one fetch returned, `positions` to where the
    fetch began. Records for the table changelogs (`feeds_streams` false) always pass: restoring
    state reads them while the streams are stopped. An agent's record fetched then would be
    dropped by faust with the fetch position already past it. It is read again from where the
    fetch began, or from the record itself if that is earlier (a seek moved the position while
    the fetch waited): starting early only repeats records, starting late would lose them.
    """
    if streams_flowing:
        return {}
    return {
        part: min(min(offsets), positions.get(part, min(offsets)))
        for part, offsets in fetched.items()
        if offsets and feeds_streams(part)
    }
