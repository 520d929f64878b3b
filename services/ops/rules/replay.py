"""Replay and re-drive decisions: where a rewound group starts, where a dead letter goes back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

REDRIVE_COUNT = "x-redrive-count"
ORIGINAL_TOPIC = "x-original-topic"


@dataclass(frozen=True)
class PartitionMove:
    """One partition of a rewind plan."""

    partition: int
    committed: int | None  # None: the group never committed here
    target: int
    low: int
    high: int

    @property
    def replayed(self) -> int:
        """Records the group will read again (negative: it skips ahead)."""
        start = self.committed if self.committed is not None else self.low
        return start - self.target


def rewind_target(
    mode: str,
    low: int,
    high: int,
    by_time: int | None = None,
    offset: int | None = None,
) -> int:
    """The offset a partition restarts from, clamped into what the log still holds.

    `by_time` is the broker's answer to offsets-for-times (-1 when the time is after the last
    record: the group then starts at the end, reading nothing older).
    """
    if mode == "earliest":
        target = low
    elif mode == "latest":
        target = high
    elif mode == "datetime":
        target = high if by_time is None or by_time < 0 else by_time
    elif mode == "offset":
        if offset is None:
            raise ValueError("--to-offset needs an offset")
        target = offset
    else:
        raise ValueError(f"unknown rewind mode {mode!r}")
    return max(low, min(high, target))


def describe_plan(group: str, topic: str, moves: list[PartitionMove]) -> str:
    lines = [f"group {group} on {topic}:", "  partition  committed     target   replays"]
    for move in moves:
        committed = "-" if move.committed is None else str(move.committed)
        lines.append(f"  {move.partition:>9}  {committed:>9}  {move.target:>9}  {move.replayed:>8}")
    lines.append(f"  total replayed: {sum(max(0, m.replayed) for m in moves)}")
    return "\n".join(lines)


def redrive_destination(headers: Mapping[str, str], allowed: set[str]) -> str | None:
    """The topic a dead letter goes back to: its original topic, if that is one we re-drive to.

    Dead letters of the fetcher name the upstream (`pipeline:triggers`): those are not Kafka
    records yet and cannot be re-driven into Kafka as they are.
    """
    original = headers.get(ORIGINAL_TOPIC)
    if original is None or original not in allowed:
        return None
    return original


def redrive_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, str | bytes | None]]:
    """Original headers without the error ones, plus an incremented re-drive count."""
    count = 0
    kept: list[tuple[str, str | bytes | None]] = []
    for key, value in headers:
        if key == REDRIVE_COUNT:
            try:
                count = int(value.decode())
            except ValueError:
                count = 0
        elif not key.startswith("x-error") and key not in ("x-failed-at", "x-service"):
            kept.append((key, value))
    kept.append((REDRIVE_COUNT, str(count + 1).encode()))
    return kept
