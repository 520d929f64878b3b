"""Replay and re-drive decisions: where a rewound group starts, where a dead letter goes back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from services.common.headers import (
    X_ERROR_PREFIX,
    X_FAILED_AT,
    X_ORIGINAL_TOPIC,
    X_REDRIVE_COUNT,
    X_SERVICE,
)
from services.ops.errors import OperatorError
from services.ops.rules.moments import iso

RewindMode = Literal["earliest", "latest", "datetime", "offset", "offsets"]


@dataclass(frozen=True)
class RewindRequest:
    """Where the operator wants a group to restart: one mode and its argument."""

    mode: RewindMode
    when: datetime | None = None  # datetime: the first record at or after it
    offset: int | None = None  # offset: the same offset on every partition
    offsets: Mapping[int, int] = field(default_factory=dict)  # offsets: partition -> offset

    def describe(self) -> str:
        if self.mode == "datetime" and self.when is not None:
            return f"the first record at or after {iso(self.when)}"
        if self.mode == "offset":
            return f"offset {self.offset}"
        if self.mode == "offsets":
            return "offsets " + ",".join(f"{p}:{o}" for p, o in sorted(self.offsets.items()))
        return self.mode


@dataclass(frozen=True)
class PartitionMove:
    """One partition of a rewind plan."""

    partition: int
    committed: int | None  # None: the group never committed here
    target: int
    low: int
    high: int
    topic: str = ""

    @property
    def replayed(self) -> int:
        """Records the group will read again (negative: it skips ahead)."""
        start = self.committed if self.committed is not None else self.low
        return start - self.target


def parse_offsets(text: str) -> dict[int, int]:
    """`0:123,1:456` -> {0: 123, 1: 456}; anything else is refused, naming the bad part."""
    offsets: dict[int, int] = {}
    for part in text.split(","):
        partition, sep, offset = part.strip().partition(":")
        if not sep or not partition.strip().isdigit() or not offset.strip().isdigit():
            raise OperatorError(
                f"--to-offsets {text!r}: {part.strip()!r} is not PARTITION:OFFSET "
                "(e.g. 0:123,1:456)"
            )
        if int(partition) in offsets:
            raise OperatorError(f"--to-offsets {text!r} names partition {int(partition)} twice")
        offsets[int(partition)] = int(offset)
    return offsets


def rewind_target(
    mode: str,
    low: int,
    high: int,
    by_time: int | None = None,
    offset: int | None = None,
) -> int:
    """The offset a partition restarts from.

    `earliest`, `latest` and `datetime` are clamped into what the log still holds; `by_time` is
    the broker's answer to offsets-for-times (-1 when the time is after the last record: the
    group then starts at the end, reading nothing older). An explicit `offset` outside
    `low..high` is refused rather than guessed at.
    """
    if mode == "earliest":
        target = low
    elif mode == "latest":
        target = high
    elif mode == "datetime":
        target = high if by_time is None or by_time < 0 else by_time
    elif mode in ("offset", "offsets"):
        if offset is None:
            raise ValueError("--to-offset needs an offset")
        if not low <= offset <= high:
            raise OperatorError(
                f"offset {offset} is out of range: the partition holds offsets {low}..{high}"
            )
        target = offset
    else:
        raise ValueError(f"unknown rewind mode {mode!r}")
    return max(low, min(high, target))


def plan_partition(
    topic: str,
    partition: int,
    committed: int | None,
    low: int,
    high: int,
    request: RewindRequest,
    by_time: int | None = None,
) -> PartitionMove:
    """One partition's move; an out-of-range offset is refused naming topic and partition."""
    offset = request.offsets.get(partition) if request.mode == "offsets" else request.offset
    try:
        target = rewind_target(request.mode, low, high, by_time, offset)
    except OperatorError as exc:
        raise OperatorError(f"{topic} partition {partition}: {exc}") from None
    return PartitionMove(partition, committed, target, low, high, topic)


def partitions_to_move(request: RewindRequest, topic: str, existing: Sequence[int]) -> list[int]:
    """The partitions a request moves: all of them, or those `--to-offsets` names (which must
    exist)."""
    if request.mode != "offsets":
        return sorted(existing)
    unknown = sorted(set(request.offsets) - set(existing))
    if unknown:
        raise OperatorError(
            f"{topic} has no partition {unknown[0]} (it has 0..{max(existing, default=-1)})"
        )
    return sorted(request.offsets)


def describe_plan(
    group: str,
    topic: str,
    moves: Sequence[PartitionMove],
    request: RewindRequest | None = None,
    new_group: str | None = None,
) -> str:
    """The plan as the operator reads it: per partition where the group is and where it goes."""
    into = f" into new group {new_group} (group {group} is left alone)" if new_group else ""
    to = f" to {request.describe()}" if request is not None else ""
    lines = [
        f"group {group} on {topic}{to}{into}:",
        "  partition    current     target  to reprocess",
    ]
    for move in moves:
        committed = "-" if move.committed is None else str(move.committed)
        lines.append(
            f"  {move.partition:>9}  {committed:>9}  {move.target:>9}  {move.replayed:>12}"
        )
    lines.append(f"  total to reprocess: {sum(max(0, m.replayed) for m in moves)}")
    return "\n".join(lines)


def redrive_destination(headers: Mapping[str, str], allowed: set[str]) -> str | None:
    """The topic a dead letter goes back to: its original topic, if that is one we re-drive to.

    Dead letters of the fetcher name the upstream (`pipeline:triggers`): those are not Kafka
    records yet and cannot be re-driven into Kafka as they are.
    """
    original = headers.get(X_ORIGINAL_TOPIC)
    if original is None or original not in allowed:
        return None
    return original


def redrive_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, str | bytes | None]]:
    """Original headers without the error ones, plus an incremented re-drive count."""
    count = 0
    kept: list[tuple[str, str | bytes | None]] = []
    for key, value in headers:
        if key == X_REDRIVE_COUNT:
            try:
                count = int(value.decode())
            except ValueError:
                count = 0
        elif not key.startswith(X_ERROR_PREFIX) and key not in (X_FAILED_AT, X_SERVICE):
            kept.append((key, value))
    kept.append((X_REDRIVE_COUNT, str(count + 1).encode()))
    return kept


def qualified_topic(name: str, prefix: str) -> str:
    """A topic as the operator names it (`triggers.raw`) in this environment's namespace
    (`staging.triggers.raw`); a name already carrying the prefix is kept."""
    return name if not prefix or name.startswith(prefix) else f"{prefix}{name}"
