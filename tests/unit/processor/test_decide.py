"""Stage 2's decision on values: every outcome, and the policy order, one row per case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from services.common.enrichments import Enrichments
from services.common.models import OutcomeStatus
from services.processor.rules.cancel import hold, remember_cancel
from services.processor.rules.decide import decide
from services.processor.rules.decision import HELD, REQUESTED, Cancel, Decision, Emit, End, Lookup
from services.processor.rules.profile import ProfileView
from services.processor.rules.state import (
    Pending,
    ProfileState,
    remember_message,
    remember_request,
    to_millis,
)
from tests.unit.processor.rulebook_fixtures import (
    AT_HAND,
    BOOK,
    CODEC,
    EMPTY,
    GONE,
    HOUR,
    LISTED,
    MINUTE,
    NO_CONSENT,
    ORIGIN,
    SEARCHED,
    T0,
    arrival,
    summary,
)

DAY = timedelta(days=1)
NIGHT = T0.replace(hour=23)  # inside the 22:00-06:00 (UTC) quiet hours of `quiet` and `reminder`
NO_SEARCH = Enrichments()
RECENT_CART = remember_request(EMPTY, "cart", T0 - 30 * MINUTE)
CAPPED = remember_request(EMPTY, "search", T0 - 2 * HOUR)  # the one request a day cart allows
RECEIPT_SENT = remember_request(EMPTY, "receipt", T0 - 2 * HOUR)
HELD_M0 = Pending(
    "reminder", "m0", "reminder", to_millis(T0 - 10 * MINUTE), to_millis(T0 + 20 * MINUTE), "m0"
)
HELD_REMINDER = hold(remember_request(EMPTY, "reminder", T0 - 10 * MINUTE), HELD_M0)
CANCEL_FIRST = remember_cancel(EMPTY, "purchase", T0 + 10 * MINUTE)


def seen(result: str, origin: str = ORIGIN) -> ProfileState:
    """The state after this very record (`origin`) was decided `result` once before."""
    return remember_message(EMPTY, "m1", T0, origin, result)


@dataclass(frozen=True)
class Case:
    trigger_id: str = "cart"
    at: datetime = T0
    now: datetime = T0 + MINUTE
    state: ProfileState = EMPTY
    view: ProfileView | None = AT_HAND
    profile_id: str = "P1"
    enrichments: Enrichments = SEARCHED


def decided(case: Case) -> Decision | Lookup:
    trigger = arrival(
        case.trigger_id, at=case.at, enrichments=case.enrichments, profile_id=case.profile_id
    )
    return decide(trigger, case.view, case.state, BOOK.route(case.trigger_id), case.now, BOOK)


CASES: dict[str, tuple[Case, tuple[str, ...]]] = {
    # ahead of the policies
    "no campaign mails the trigger id": (Case(trigger_id="other"), ("unrouted:no_campaign",)),
    "a record without a profile key": (Case(profile_id=""), ("unrouted:no_campaign",)),
    "beyond the future skew": (Case(at=T0 + 6 * MINUTE, now=T0), ("invalid:future_timestamp",)),
    "within the future skew": (Case(at=T0 + 4 * MINUTE, now=T0), ("emit",)),
    "a cancel trigger, a hold in its window": (
        Case(trigger_id="purchase", state=HELD_REMINDER),
        ("cancel m0", "unrouted:cancel_signal"),
    ),
    "a cancel trigger after the window": (
        Case(trigger_id="purchase", at=T0 + HOUR, now=T0 + HOUR, state=HELD_REMINDER),
        ("unrouted:cancel_signal",),
    ),
    "a cancel trigger, nothing held": (Case(trigger_id=" PURCHASE"), ("unrouted:cancel_signal",)),
    # a redelivered record repeats its decision
    "redelivered: a request": (Case(state=seen(REQUESTED)), ("emit",)),
    "redelivered: a request, profile not at hand": (
        Case(state=seen(REQUESTED), view=None),
        ("lookup",),
    ),
    "redelivered: a hold": (Case(trigger_id="reminder", state=seen(HELD)), ()),
    "redelivered: an outcome": (
        Case(state=seen("expired:stale_trigger")),
        ("expired:stale_trigger",),
    ),
    "redelivered: a skip": (
        Case(trigger_id="search", state=seen("skipped:missing_data"), enrichments=NO_SEARCH),
        ("skipped:missing_data",),
    ),
    # 1. dedup
    "the same messageId in another record": (
        Case(state=seen(REQUESTED, origin="triggers.raw:0:7")),
        ("duplicate:repeat_message",),
    ),
    "within the dedup window": (Case(state=RECENT_CART), ("duplicate:dedup_window",)),
    "after the dedup window": (
        Case(state=remember_request(EMPTY, "cart", T0 - 2 * DAY)),
        ("emit",),
    ),
    # 2. validity
    "too old to mail": (Case(at=T0 - 3 * HOUR), ("expired:stale_trigger",)),
    # 3. personalisation
    "a required variable is missing": (
        Case(trigger_id="search", enrichments=NO_SEARCH),
        ("skipped:missing_data",),
    ),
    # 4. consent and suppression list
    "the profile is not at hand": (Case(view=None), ("lookup",)),
    "the profile is gone": (Case(view=GONE), ("unmatched:profile_gone",)),
    "no marketing consent": (Case(view=NO_CONSENT), ("suppressed:no_consent",)),
    "a receipt needs no marketing consent": (
        Case(trigger_id="receipt", view=NO_CONSENT),
        ("emit",),
    ),
    "on the suppression list": (Case(view=LISTED), ("suppressed:hard_bounce",)),
    # 5. frequency cap
    "the cap is reached": (Case(state=CAPPED), ("suppressed:frequency_capped",)),
    "receipts do not count towards a cap": (Case(state=RECEIPT_SENT), ("emit",)),
    "a receipt is never capped": (Case(trigger_id="receipt", state=CAPPED), ("emit",)),
    # 6. cancel window
    "a delay holds": (Case(trigger_id="reminder"), ("hold",)),
    "a cancel that arrived first": (
        Case(trigger_id="reminder", state=CANCEL_FIRST),
        ("cancelled:cancel_arrived_first",),
    ),
    "a delay already over": (Case(trigger_id="reminder", at=T0 - HOUR), ("emit",)),
    # 7. quiet hours
    "quiet hours defer": (Case(trigger_id="quiet", at=NIGHT, now=NIGHT), ("emit (deferred)",)),
    "quiet hours outlast the validity": (
        Case(trigger_id="quiet", at=NIGHT - 6 * HOUR, now=NIGHT),
        ("expired:quiet_hours",),
    ),
    # 8. emit
    "nothing says no": (Case(), ("emit",)),
    # the order: where two policies say no, the earlier one decides
    "routing before the future skew": (
        Case(trigger_id="other", at=T0 + HOUR, now=T0),
        ("unrouted:no_campaign",),
    ),
    "the future skew before dedup": (
        Case(at=T0 + HOUR, now=T0, state=seen(REQUESTED, origin="elsewhere")),
        ("invalid:future_timestamp",),
    ),
    "a repeat before validity": (
        Case(at=T0 - 3 * HOUR, state=seen(REQUESTED, origin="elsewhere")),
        ("duplicate:repeat_message",),
    ),
    "the dedup window before validity": (
        Case(at=T0 - 3 * HOUR, state=remember_request(EMPTY, "cart", T0 - 3 * HOUR)),
        ("duplicate:dedup_window",),
    ),
    "validity before personalisation": (
        Case(trigger_id="search", at=T0 - 3 * DAY, enrichments=NO_SEARCH),
        ("expired:stale_trigger",),
    ),
    "personalisation before any lookup": (
        Case(trigger_id="search", enrichments=NO_SEARCH, view=None),
        ("skipped:missing_data",),
    ),
    "a gone profile before the cap": (Case(view=GONE, state=CAPPED), ("unmatched:profile_gone",)),
    "consent before the cap": (Case(view=NO_CONSENT, state=CAPPED), ("suppressed:no_consent",)),
    "the suppression list before the cap": (
        Case(view=LISTED, state=CAPPED),
        ("suppressed:hard_bounce",),
    ),
    "the cap before the cancel window": (
        Case(trigger_id="reminder", state=CAPPED),
        ("suppressed:frequency_capped",),
    ),
    "a hold at night waits for its release, not the window": (
        Case(trigger_id="reminder", at=NIGHT, now=NIGHT),
        ("hold",),
    ),
    "a cancel arrived first before quiet hours": (
        Case(
            trigger_id="reminder",
            at=NIGHT,
            now=NIGHT,
            state=remember_cancel(EMPTY, "purchase", NIGHT + MINUTE),
        ),
        ("cancelled:cancel_arrived_first",),
    ),
    "a delay over at night, then quiet hours": (
        Case(trigger_id="reminder", at=NIGHT - HOUR, now=NIGHT),
        ("emit (deferred)",),
    ),
}


@pytest.mark.parametrize(("case", "expected"), CASES.values(), ids=CASES.keys())
def test_decide(case: Case, expected: tuple[str, ...]) -> None:
    assert summary(decided(case)) == expected


@pytest.mark.parametrize(
    ("case", "remembered"),
    [
        (Case(), REQUESTED),
        (Case(trigger_id="reminder"), HELD),
        (Case(at=T0 - 3 * HOUR), "expired:stale_trigger"),
        (Case(trigger_id="purchase"), "unrouted:cancel_signal"),
    ],
    ids=["a request", "a hold", "an outcome", "a cancel signal"],
)
def test_the_state_remembers_the_record_and_its_decision(case: Case, remembered: str) -> None:
    decision = decided(case)
    assert isinstance(decision, Decision) and decision.state is not None
    first = decision.state.seen["m1"]
    assert (first.at, first.source, first.result) == (to_millis(case.at), ORIGIN, remembered)


@pytest.mark.parametrize(
    "case",
    [
        Case(trigger_id="other"),
        Case(at=T0 + HOUR, now=T0),
        Case(state=seen(REQUESTED)),
        Case(state=seen(REQUESTED, origin="elsewhere")),
    ],
    ids=["unrouted", "future-dated", "redelivered", "a repeat"],
)
def test_what_never_reaches_the_state(case: Case) -> None:
    decision = decided(case)
    assert isinstance(decision, Decision) and decision.state is None


def test_a_request_counts_towards_dedup_and_caps() -> None:
    decision = decided(Case())
    assert isinstance(decision, Decision) and decision.state is not None
    (emitted,) = decision.actions
    assert isinstance(emitted, Emit) and not emitted.wait
    assert decision.state.sent == {"cart": to_millis(T0)}
    assert decision.state.sends == {"cart": (to_millis(T0),)}
    assert emitted.request.profile_id == "P1" and emitted.request.email == "ann@example.com"
    assert emitted.request.expires_at == T0 + 2 * HOUR


def test_a_hold_keeps_the_request_until_due() -> None:
    decision = decided(Case(trigger_id="reminder"))
    assert isinstance(decision, Decision) and decision.state is not None
    pending = decision.state.pending["m1"]
    assert pending.due_at == to_millis(T0 + 30 * MINUTE)
    assert CODEC.decode(pending.request).idempotency_key  # the request itself is kept
    assert decision.state.sends == {"reminder": (to_millis(T0),)}


def test_a_cancel_ends_the_hold_and_refunds_dedup_and_caps() -> None:
    decision = decided(Case(trigger_id="purchase", state=HELD_REMINDER))
    assert isinstance(decision, Decision) and decision.state is not None
    cancel = decision.actions[0]
    assert isinstance(cancel, Cancel)
    assert cancel.end == End(
        OutcomeStatus.CANCELLED, "m0", "cancelled_by:m1", "reminder", "reminder", "P1"
    )
    assert decision.state.pending == {} and decision.state.sends == {}
    assert decision.state.cancels == {"purchase": (to_millis(T0),)}


def test_outcomes_name_the_trigger_and_where_it_was_read() -> None:
    decision = decided(Case(view=GONE))
    assert isinstance(decision, Decision)
    (gone,) = decision.actions
    assert gone == End(
        OutcomeStatus.UNMATCHED,
        "m1",
        "profile_gone",
        "cart",
        "cart",
        "P1",
        ORIGIN,
        unmatched=True,  # re-drivable: the record goes to triggers.unmatched too
    )


def test_a_skip_names_the_missing_variable() -> None:
    decision = decided(Case(trigger_id="search", enrichments=NO_SEARCH))
    assert isinstance(decision, Decision)
    (skipped,) = decision.actions
    assert isinstance(skipped, End)
    assert skipped.detail == {"variable": "searchTerms", "why": "absent"}


def test_quiet_hours_move_not_before_to_the_window_end() -> None:
    decision = decided(Case(trigger_id="quiet", at=NIGHT, now=NIGHT))
    assert isinstance(decision, Decision)
    (emitted,) = decision.actions
    assert isinstance(emitted, Emit)
    assert emitted.request.not_before == (NIGHT + DAY).replace(hour=6)


def test_defaults_that_stood_in_are_reported_for_the_metrics() -> None:
    decision = decided(Case())  # the trigger has no pageURL: cartUrl renders its default
    assert isinstance(decision, Decision)
    assert ("cart", "cartUrl", "absent") in decision.fallbacks
    assert ("cart", "pageUrl", "absent") in decision.fallbacks
