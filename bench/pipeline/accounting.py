"""Exact counts of a run: lost triggers, duplicate emails, outcomes per trigger.

Every trigger of a run comes from a shopper of its own, taken in turn (shopper 0, 1, 2...), so
trigger number `i` must become exactly one email to `shopper<i>@example.com`, with the
Message-ID the mailer derives from its idempotency key. Counting at the SMTP sink by both
recipient and Message-ID makes the lost and duplicate counts exact, whatever the topics say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.pipeline.records import Journey, SinkMail
from services.simulator.population import shopper


@dataclass(frozen=True)
class Reconciliation:
    """What the sink and `outcomes` say about the triggers numbered [first, end)."""

    triggers: int
    emailed: int  # triggers whose shopper got at least one email
    lost: int  # triggers whose shopper got none
    duplicate_emails: int  # emails beyond the first, by recipient
    duplicate_message_ids: int  # emails beyond the first, by Message-ID
    without_outcome: int  # triggers with no record on `outcomes`
    rewritten_upstream: int  # triggers.raw records beyond the first of one upstream message
    conflicting_outcomes: int  # triggers with two different outcome statuses
    repeated_outcome_records: int  # the same outcome recorded again (redelivery; harmless)
    resent_after_unknown: int  # `unknown`, then `sent` once an operator resent it (runbook)
    outcomes: dict[str, int]  # outcome label -> triggers
    lost_examples: list[int] = field(default_factory=list)
    lost_reached: dict[str, str] = field(default_factory=dict)  # trigger -> last stage reached
    duplicate_examples: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return (
            self.lost == 0
            and self.duplicate_emails == 0
            and self.duplicate_message_ids == 0
            and self.without_outcome == 0
            and self.conflicting_outcomes == 0
            and self.rewritten_upstream == 0
        )


def shopper_number(journey: Journey) -> int:
    """The trigger's number in the run, from its profile id (`P000000042`); -1 if unknown."""
    profile = journey.profile_id or ""
    return int(profile[1:]) if profile[:1] == "P" and profile[1:].isdigit() else -1


def numbered(journeys: Iterable[Journey], first: int, end: int) -> dict[int, Journey]:
    """The journeys of triggers [first, end) by number: from the profile id when a stage named
    it, else from the triggers.raw key (the visitor's mcId or declared id) or the shopper address
    in the envelope, so a trigger that ended before its profile was resolved (dead-lettered in
    stage 1, say) is still counted."""
    visitors: dict[str, int] = {}
    for number in range(first, end):
        visitor = shopper(number)
        visitors[visitor.mcid] = visitors[visitor.declared_id] = visitors[visitor.email] = number
    found: dict[int, Journey] = {}
    for journey in journeys:
        number = shopper_number(journey)
        if not first <= number < end:
            number = visitors.get(journey.raw_key or "", -1)
        if not first <= number < end:  # keyed by its messageId: an email-only trigger
            number = visitors.get(journey.raw_email or "", -1)
        if number >= 0:
            found.setdefault(number, journey)
    return found


def _reached(numbers: list[int], journeys: dict[int, Journey]) -> dict[str, str]:
    """For each lost trigger, the last stage its journey shows (for diagnosis)."""
    reached = {}
    for number in numbers:
        journey = journeys.get(number)
        stage = "nowhere we can see (not in triggers.raw under its mcId, declared id or email)"
        if journey is not None:
            for name in ("raw", "committed", "resolved", "decided", "accepted", "recorded"):
                if getattr(journey, name) is not None:
                    stage = name
            where = (
                f"messageId {journey.message_id}, upstream {journey.upstream}, "
                f"triggers.raw {journey.raw_position}"
            )
            stage += f"; {where}; outcomes {dict(journey.outcomes)}"
        reached[str(number)] = stage
    return reached


def reconcile(
    first: int, end: int, mail: Iterable[SinkMail], journeys: Iterable[Journey]
) -> Reconciliation:
    """Count triggers [first, end) of the run: their emails at the sink and their outcomes."""
    recipients = {shopper(i).email: i for i in range(first, end)}
    by_recipient: Counter[str] = Counter()
    by_message_id: Counter[str] = Counter()
    for item in mail:
        ours = [r for r in item.recipients if r in recipients]
        if ours:
            by_recipient.update(ours)
            by_message_id[item.message_id] += 1
    lost = sorted(i for address, i in recipients.items() if by_recipient[address] == 0)
    duplicates = {a: n for a, n in by_recipient.items() if n > 1}
    repeated_ids = {m: n for m, n in by_message_id.items() if n > 1}
    by_number = numbered(journeys, first, end)
    mine = list(by_number.values())
    labels: Counter[str] = Counter()
    conflicting = repeated = resent = 0
    for journey in mine:
        distinct = list(journey.outcomes)
        repeated += sum(journey.outcomes.values()) - len(distinct)
        # One outcome is one status: a redelivered request may be recorded again with another
        # reason (`unknown:already_unknown` after `unknown:smtp_unknown`), never another status;
        # the one exception is an `unknown` the operator resent (`replay redrive
        # --resend-unknown`), which ends `sent` (the sink counts any second copy).
        statuses = {label.split(":", 1)[0] for label in distinct}
        if statuses == {"unknown", "sent"}:
            resent += 1
        elif len(statuses) > 1:
            conflicting += 1
        labels[" + ".join(sorted(distinct)) or "none"] += 1
    without_outcome = (end - first) - sum(1 for j in mine if j.outcomes)
    return Reconciliation(
        triggers=end - first,
        emailed=(end - first) - len(lost),
        lost=len(lost),
        duplicate_emails=sum(n - 1 for n in duplicates.values()),
        duplicate_message_ids=sum(n - 1 for n in repeated_ids.values()),
        without_outcome=without_outcome,
        rewritten_upstream=sum(j.rewritten for j in mine),
        conflicting_outcomes=conflicting,
        repeated_outcome_records=repeated,
        resent_after_unknown=resent,
        outcomes=dict(labels.most_common()),
        lost_examples=lost[:10],
        lost_reached=_reached(lost[:10], by_number),
        duplicate_examples=sorted(duplicates)[:10],
    )
