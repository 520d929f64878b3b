"""Accounting of triggers against outcomes: what became of each trigger that arrived.

A trigger arrives on `triggers.raw` (or, unparseable, only as the fetcher's `invalid` outcome)
and should end in an outcome. A trigger can collect several outcomes: `unmatched`, then `sent`
once re-driven; `failed`, then `sent` after a fix; a `duplicate` or a repeated report when a
group is rewound. Its *settled* outcome is the most decisive one (`OUTCOME_RANK`), and every
count here is of triggers, so in = out holds per arrival hour however often a trigger is
replayed.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.common.models import Outcome, OutcomeStatus
from services.ops.rules.moments import iso

# Higher wins: an email sent settles a trigger whatever else was reported for it.
OUTCOME_RANK: dict[OutcomeStatus, int] = {
    OutcomeStatus.SENT: 10,
    OutcomeStatus.UNKNOWN: 9,
    OutcomeStatus.FAILED: 8,
    OutcomeStatus.EXPIRED: 7,
    OutcomeStatus.SUPPRESSED: 6,
    OutcomeStatus.SKIPPED: 6,
    OutcomeStatus.CANCELLED: 5,
    OutcomeStatus.INVALID: 4,
    OutcomeStatus.UNROUTED: 4,
    OutcomeStatus.UNMATCHED: 2,
    OutcomeStatus.DUPLICATE: 1,
}
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Arrival:
    at: datetime
    where: str  # topic:partition:offset, or the service that reported it
    campaign: str | None = None  # routed from the trigger id, when asked for


@dataclass(frozen=True)
class Settled:
    rank: int
    status: str
    reason: str | None
    campaign: str | None


def settles(new: Outcome, current: Settled | None) -> Settled | None:
    """The outcome that settles a trigger after `new`: None keeps the current one (the first
    of equal rank stays, so a repeated report never replaces the original reason)."""
    rank = OUTCOME_RANK.get(new.status, 3)
    if current is not None and current.rank >= rank:
        return None
    return Settled(
        rank,
        sys.intern(new.status.value),
        sys.intern(new.reason) if new.reason else None,
        sys.intern(new.campaign) if new.campaign else None,
    )


@dataclass
class Ledger:
    """Arrivals and settled outcomes by message id; memory grows with the triggers kept."""

    arrivals: dict[str, Arrival] = field(default_factory=dict)
    settled: dict[str, Settled] = field(default_factory=dict)
    outcome_records: int = 0

    def arrive(
        self, message_id: str, at: datetime, where: str, campaign: str | None = None
    ) -> None:
        """A trigger on the input; a re-driven copy keeps the first arrival."""
        if message_id not in self.arrivals:
            self.arrivals[message_id] = Arrival(at, where, campaign)

    def outcome(self, outcome: Outcome) -> None:
        self.outcome_records += 1
        if outcome.service == "fetcher" and outcome.message_id not in self.arrivals:
            # never became a record: the fetcher's outcome is its arrival too
            self.arrivals[outcome.message_id] = Arrival(outcome.at, "fetcher")
        better = settles(outcome, self.settled.get(outcome.message_id))
        if better is not None:
            self.settled[outcome.message_id] = better

    def forget_before(self, since: datetime) -> None:
        """Drop triggers that arrived before the window (a long-running exporter's window)."""
        old = [m for m, a in self.arrivals.items() if a.at < since]
        for message_id in old:
            del self.arrivals[message_id]
            self.settled.pop(message_id, None)


@dataclass(frozen=True)
class HourRow:
    start: datetime
    triggers_in: int
    triggers_out: int

    @property
    def open(self) -> int:
        return self.triggers_in - self.triggers_out


@dataclass(frozen=True)
class OpenTrigger:
    message_id: str
    arrived: datetime
    where: str
    age: timedelta


@dataclass(frozen=True)
class Report:
    since: datetime
    now: datetime
    campaign: str | None
    counts: dict[tuple[str, str | None], int]
    hours: tuple[HourRow, ...]
    oldest_open: OpenTrigger | None
    outcome_records: int

    @property
    def triggers_in(self) -> int:
        return sum(h.triggers_in for h in self.hours)

    @property
    def triggers_out(self) -> int:
        return sum(h.triggers_out for h in self.hours)

    def to_json(self) -> dict[str, Any]:
        oldest = self.oldest_open
        return {
            "since": iso(self.since),
            "until": iso(self.now),
            "campaign": self.campaign,
            "triggers_in": self.triggers_in,
            "triggers_out": self.triggers_out,
            "open": self.triggers_in - self.triggers_out,
            "outcomes": [
                {"status": s, "reason": r, "triggers": n}
                for (s, r), n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0][0]))
            ],
            "hours": [
                {"hour": iso(h.start), "in": h.triggers_in, "out": h.triggers_out, "open": h.open}
                for h in self.hours
            ],
            "oldest_open": None
            if oldest is None
            else {
                "message_id": oldest.message_id,
                "arrived": iso(oldest.arrived),
                "where": oldest.where,
                "age_seconds": int(oldest.age.total_seconds()),
            },
            "outcome_records": self.outcome_records,
        }


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def report(ledger: Ledger, since: datetime, now: datetime, campaign: str | None = None) -> Report:
    """Counts per settled status and reason, in and out per arrival hour, and the oldest
    trigger still without an outcome, for the triggers that arrived in [since, now]."""
    counts: Counter[tuple[str, str | None]] = Counter()
    per_hour: dict[datetime, list[int]] = {}
    start = _hour(since)
    while start <= now:
        per_hour[start] = [0, 0]
        start += HOUR
    oldest: tuple[datetime, str, Arrival] | None = None
    for message_id, arrival in ledger.arrivals.items():
        if arrival.at < since or arrival.at > now:
            continue
        done = ledger.settled.get(message_id)
        trigger_campaign = done.campaign if done is not None else arrival.campaign
        if campaign is not None and trigger_campaign != campaign:
            continue
        row = per_hour.setdefault(_hour(arrival.at), [0, 0])
        row[0] += 1
        if done is None:
            if oldest is None or arrival.at < oldest[0]:
                oldest = (arrival.at, message_id, arrival)
            continue
        row[1] += 1
        counts[(done.status, done.reason)] += 1
    hours = tuple(HourRow(h, c[0], c[1]) for h, c in sorted(per_hour.items()))
    open_trigger = (
        None
        if oldest is None
        else OpenTrigger(oldest[1], oldest[0], oldest[2].where, now - oldest[0])
    )
    return Report(since, now, campaign, dict(counts), hours, open_trigger, ledger.outcome_records)


def render_report(result: Report) -> str:
    """The report as the operator reads it."""
    scope = f" of campaign {result.campaign}" if result.campaign else ""
    lines = [f"triggers{scope} that arrived from {iso(result.since)} to {iso(result.now)}:"]
    lines.append(f"  {'outcome':<34} {'triggers':>9}")
    ordered = sorted(result.counts.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][1] or ""))
    for (status, reason), count in ordered:
        label = f"{status}:{reason}" if reason else status
        lines.append(f"  {label:<34} {count:>9}")
    open_count = result.triggers_in - result.triggers_out
    lines.append(f"  {'(no outcome yet)':<34} {open_count:>9}")
    lines.append(f"  {'total':<34} {result.triggers_in:>9}")
    lines.append("")
    lines.append(f"  {'hour (UTC)':<20} {'in':>9} {'out':>9} {'open':>7}")
    for hour in result.hours:
        mark = "" if hour.open == 0 else "  <- in != out"
        lines.append(
            f"  {iso(hour.start):<20} {hour.triggers_in:>9} {hour.triggers_out:>9} "
            f"{hour.open:>7}{mark}"
        )
    lines.append("")
    oldest = result.oldest_open
    if oldest is None:
        lines.append("every trigger has an outcome")
    else:
        minutes = int(oldest.age.total_seconds() // 60)
        lines.append(
            f"oldest trigger without an outcome: {oldest.message_id}, arrived "
            f"{iso(oldest.arrived)} ({minutes} min ago) at {oldest.where}"
        )
    return "\n".join(lines)
