"""Which dead letters a re-drive selects, how they are counted, and where its progress lives."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from services.common.headers import X_ERROR_REASON, X_ORIGINAL_TOPIC
from services.ops.rules.replay import redrive_destination

NOT_REDRIVABLE = "(not re-drivable)"

SkipWhy = Literal["reason", "campaign", "trigger", "message_id", "time", "not_redrivable"]
_WHY = {
    "reason": "of another reason",
    "campaign": "of another campaign",
    "trigger": "of another trigger id",
    "message_id": "of another Message-ID",
    "time": "outside the time range",
    "not_redrivable": "not re-drivable (never Kafka records)",
}


@dataclass(frozen=True)
class DeadLetter:
    """What a re-drive needs to know of one dead letter, read from its headers (and, when a
    filter asks for campaign or trigger id, from its value)."""

    headers: Mapping[str, str]
    failed_at: datetime | None  # `x-failed-at`, else the record's own timestamp
    campaign: str | None = None
    trigger_id: str | None = None
    message_digest: str | None = None  # an email request's Message-ID digest (message_ids.py)

    @property
    def reason(self) -> str:
        return self.headers.get(X_ERROR_REASON) or "(none)"

    @property
    def original_topic(self) -> str | None:
        return self.headers.get(X_ORIGINAL_TOPIC)


@dataclass(frozen=True)
class RedriveFilter:
    """The operator's selection; an empty part selects everything.

    `since` is inclusive and `until` exclusive, both against the time the record failed.
    `message_digests` names email requests by their Message-ID's digest (`message_ids.py`).
    `spelling` is how the operator wrote the filter: it names the progress group, so the same
    command run again resumes, even when `--since 2h` now resolves to a later time.
    """

    reasons: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()
    trigger_ids: frozenset[str] = frozenset()
    message_digests: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    spelling: tuple[str, ...] = ()

    @property
    def needs_value(self) -> bool:
        """Whether selecting needs the record's value decoded (campaign, trigger id or
        Message-ID)."""
        return bool(self.campaigns or self.trigger_ids or self.message_digests)

    @property
    def empty(self) -> bool:
        return not self.spelling


@dataclass(frozen=True)
class Redrive:
    destination: str


@dataclass(frozen=True)
class Skip:
    why: SkipWhy


def select_dead_letter(
    letter: DeadLetter, wanted: RedriveFilter, allowed: set[str]
) -> Redrive | Skip:
    """Re-drive the letter to its original topic, or say which part of the filter left it."""
    if wanted.reasons and letter.reason not in wanted.reasons:
        return Skip("reason")
    if wanted.since is not None or wanted.until is not None:
        at = letter.failed_at
        if at is None or (wanted.since is not None and at < wanted.since):
            return Skip("time")
        if wanted.until is not None and at >= wanted.until:
            return Skip("time")
    if wanted.campaigns and letter.campaign not in wanted.campaigns:
        return Skip("campaign")
    if wanted.trigger_ids and (letter.trigger_id or "").lower() not in wanted.trigger_ids:
        return Skip("trigger")
    if wanted.message_digests and letter.message_digest not in wanted.message_digests:
        return Skip("message_id")
    destination = redrive_destination(letter.headers, allowed)
    if destination is None:
        return Skip("not_redrivable")
    return Redrive(destination)


@dataclass
class RedriveTally:
    """Counts of one run (or plan): selected per reason and destination, the rest per why."""

    selected: Counter[tuple[str, str]] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    read: int = 0

    def add(self, letter: DeadLetter, choice: Redrive | Skip) -> None:
        self.read += 1
        if isinstance(choice, Redrive):
            self.selected[(letter.reason, choice.destination)] += 1
        else:
            self.skipped[choice.why] += 1

    @property
    def total(self) -> int:
        return sum(self.selected.values())

    def by_destination(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (_, destination), count in self.selected.items():
            counts[destination] += count
        if self.skipped["not_redrivable"]:
            counts[NOT_REDRIVABLE] += self.skipped["not_redrivable"]
        return counts

    def by_reason(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (reason, _), count in self.selected.items():
            counts[reason] += count
        return counts


def progress_group(base: str, wanted: RedriveFilter) -> str:
    """The consumer group holding a re-drive's position: `base` for an unfiltered re-drive, and
    one group per filter spelling, so a re-drive of other reasons later still finds the records
    this one left behind."""
    if wanted.empty:
        return base
    digest = hashlib.sha256("\x1f".join(wanted.spelling).encode()).hexdigest()[:10]
    return f"{base}.{digest}"


def describe_tally(source: str, tally: RedriveTally, executed: bool, group: str) -> str:
    """Counts per reason and destination, then what the filter left and where progress is kept."""
    verb = "re-drove" if executed else "would re-drive"
    lines = [f"{source}: read {tally.read} dead letters from the position of group {group}"]
    lines.append(f"  {'reason':<28} {'records':>8}  destination")
    for (reason, destination), count in sorted(tally.selected.items()):
        lines.append(f"  {reason:<28} {count:>8}  {destination}")
    lines.append(f"  {verb} {tally.total} in total")
    left = {why: n for why, n in sorted(tally.skipped.items()) if n}
    if left:
        parts = ", ".join(f"{n} {_WHY[why]}" for why, n in left.items())
        lines.append(f"  left in the dead-letter topic: {parts}")
    return "\n".join(lines)
