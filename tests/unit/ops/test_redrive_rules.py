"""Which dead letters a re-drive selects, how it counts them, where its progress lives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.ops.rules.redrive import (
    NOT_REDRIVABLE,
    DeadLetter,
    Redrive,
    RedriveFilter,
    RedriveTally,
    Skip,
    describe_tally,
    progress_group,
    select_dead_letter,
)

AT = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
ALLOWED = {"triggers.raw", "emails.cart"}


def letter(
    reason: str = "no_profile",
    topic: str = "triggers.raw",
    at: datetime | None = AT,
    campaign: str | None = "cart",
    trigger: str | None = "T-1",
    digest: str | None = None,
) -> DeadLetter:
    headers = {"x-error-reason": reason, "x-original-topic": topic}
    return DeadLetter(headers, at, campaign, trigger, digest)


UNKNOWN = letter(topic="emails.cart", reason="smtp_unknown", digest="ab12")


@pytest.mark.parametrize(
    ("dead", "wanted", "expected"),
    [
        (letter(), RedriveFilter(), Redrive("triggers.raw")),
        (letter(), RedriveFilter(reasons=frozenset({"no_profile"})), Redrive("triggers.raw")),
        (letter(), RedriveFilter(reasons=frozenset({"template_error"})), Skip("reason")),
        (letter(), RedriveFilter(since=AT), Redrive("triggers.raw")),  # since is inclusive
        (letter(), RedriveFilter(since=AT + timedelta(seconds=1)), Skip("time")),
        (letter(), RedriveFilter(until=AT), Skip("time")),  # until is exclusive
        (letter(at=None), RedriveFilter(since=AT), Skip("time")),
        (letter(), RedriveFilter(campaigns=frozenset({"cart"})), Redrive("triggers.raw")),
        (letter(campaign=None), RedriveFilter(campaigns=frozenset({"cart"})), Skip("campaign")),
        (letter(), RedriveFilter(trigger_ids=frozenset({"t-1"})), Redrive("triggers.raw")),
        (letter(), RedriveFilter(trigger_ids=frozenset({"t-2"})), Skip("trigger")),
        (UNKNOWN, RedriveFilter(message_digests=frozenset({"ab12"})), Redrive("emails.cart")),
        (UNKNOWN, RedriveFilter(message_digests=frozenset({"cd34"})), Skip("message_id")),
        (letter(), RedriveFilter(message_digests=frozenset({"ab12"})), Skip("message_id")),
        (letter(topic="pipeline:triggers"), RedriveFilter(), Skip("not_redrivable")),
        (
            letter(topic="emails.cart", reason="retries_exhausted"),
            RedriveFilter(),
            Redrive("emails.cart"),
        ),
    ],
)
def test_select_dead_letter(dead: DeadLetter, wanted: RedriveFilter, expected: object) -> None:
    assert select_dead_letter(dead, wanted, ALLOWED) == expected


def test_a_letter_without_a_reason_header_is_counted_as_none() -> None:
    bare = DeadLetter({"x-original-topic": "triggers.raw"}, AT)
    assert bare.reason == "(none)"
    assert select_dead_letter(bare, RedriveFilter(reasons=frozenset({"x"})), ALLOWED) == Skip(
        "reason"
    )


def test_tally_counts_per_reason_destination_and_why_not() -> None:
    tally = RedriveTally()
    wanted = RedriveFilter(reasons=frozenset({"no_profile", "profile_gone"}))
    for dead in [letter(), letter(), letter("profile_gone"), letter("bad_field"),
                 letter(topic="pipeline:triggers")]:  # fmt: skip
        tally.add(dead, select_dead_letter(dead, wanted, ALLOWED))
    assert tally.read == 5 and tally.total == 3
    assert tally.by_reason() == {"no_profile": 2, "profile_gone": 1}
    assert tally.by_destination() == {"triggers.raw": 3, NOT_REDRIVABLE: 1}
    text = describe_tally("triggers.unmatched", tally, False, "g")
    assert "would re-drive 3 in total" in text
    assert "1 not re-drivable (never Kafka records), 1 of another reason" in text


@pytest.mark.parametrize(
    ("spelling", "same_as"),
    [
        ((), None),
        (("source=t", "reason=a"), ("source=t", "reason=a")),
    ],
)
def test_progress_group_follows_the_filter_spelling(
    spelling: tuple[str, ...], same_as: tuple[str, ...] | None
) -> None:
    group = progress_group("triggerline-redrive", RedriveFilter(spelling=spelling))
    if same_as is None:
        assert group == "triggerline-redrive"
    else:
        again = progress_group("triggerline-redrive", RedriveFilter(spelling=same_as))
        other = progress_group("triggerline-redrive", RedriveFilter(spelling=("source=t",)))
        assert group == again != other and group.startswith("triggerline-redrive.")
