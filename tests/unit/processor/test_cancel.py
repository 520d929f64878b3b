"""Cancel windows: hold, cancel inside [trigger, due], remembered cancels, release when due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.processor.rules.cancel import (
    cancel_pending,
    cancelled_in_advance,
    due_pending,
    hold,
    next_due,
    remember_cancel,
    settle,
)
from services.processor.rules.dedup import Dedup, dedup_decision
from services.processor.rules.state import (
    CANCELS_KEPT,
    Pending,
    ProfileState,
    remember_request,
    to_millis,
)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DELAY = timedelta(minutes=30)
PURCHASE = "9D0C3F1A-purchase"
CANCEL_ON = {"cart": frozenset({PURCHASE.lower()})}


def held(message_id: str = "m1", at: datetime = T0, campaign: str = "cart") -> ProfileState:
    pending = Pending(
        campaign, message_id, "cart-trigger", to_millis(at), to_millis(at + DELAY), "req"
    )
    return hold(remember_request(ProfileState(), campaign, at), pending)


def test_cancel_inside_the_window_cancels_and_refunds_dedup_and_cap() -> None:
    state, cancelled = cancel_pending(held(), PURCHASE, T0 + timedelta(minutes=5), CANCEL_ON)
    assert [p.message_id for p in cancelled] == ["m1"]
    assert state.pending == {} and state.sends == {} and state.sent == {}
    assert dedup_decision(state, "m2", "cart", T0, timedelta(hours=24)) is Dedup.SEND


def test_window_ends_are_inclusive_and_outside_does_not_cancel() -> None:
    for at in (T0, T0 + DELAY):
        assert cancel_pending(held(), PURCHASE, at, CANCEL_ON)[1]
    for at in (T0 - timedelta(milliseconds=1), T0 + DELAY + timedelta(milliseconds=1)):
        state, cancelled = cancel_pending(held(), PURCHASE, at, CANCEL_ON)
        assert cancelled == [] and set(state.pending) == {"m1"}


def test_only_listed_triggers_cancel_only_their_campaigns() -> None:
    assert cancel_pending(held(), "another-trigger", T0, CANCEL_ON)[1] == []
    assert cancel_pending(held(campaign="browse"), PURCHASE, T0, CANCEL_ON)[1] == []


def test_a_cancel_that_overtook_its_trigger_is_remembered_briefly() -> None:
    state = remember_cancel(ProfileState(), PURCHASE, T0 + timedelta(minutes=10))
    assert cancelled_in_advance(state, [PURCHASE], T0, T0 + DELAY)
    assert not cancelled_in_advance(state, [PURCHASE], T0 + timedelta(minutes=11), T0 + DELAY)
    assert not cancelled_in_advance(state, ["other"], T0, T0 + DELAY)
    for minute in range(20):
        state = remember_cancel(state, PURCHASE, T0 + timedelta(minutes=minute))
    assert len(state.cancels[PURCHASE.lower()]) == CANCELS_KEPT


def test_due_release_order_and_index() -> None:
    state = hold(held("m1"), Pending("cart", "m0", "t", to_millis(T0), to_millis(T0), "r"))
    assert next_due(state) == to_millis(T0)
    assert [p.message_id for p in due_pending(state, T0)] == ["m0"]
    assert [p.message_id for p in due_pending(state, T0 + DELAY)] == ["m0", "m1"]
    state = settle(settle(state, "m0"), "m1")
    assert state.pending == {} and next_due(state) is None
    assert state.sends  # a released request keeps counting for dedup and caps


def test_holds_and_cancels_survive_the_json_round_trip() -> None:
    state = remember_cancel(held(), PURCHASE, T0)
    assert ProfileState.from_json(state.to_json()) == state
