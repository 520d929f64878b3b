"""Dedup decisions and the per-profile state that feeds them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.processor.rules.dedup import Dedup, dedup_decision
from services.processor.rules.state import (
    Pending,
    ProfileState,
    forget_request,
    prune,
    remember_message,
    remember_request,
    to_millis,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_new_message_sends() -> None:
    assert dedup_decision(ProfileState(), "m1", "cart", T0, DAY) is Dedup.SEND


def test_same_message_is_a_repeat_whatever_the_campaign() -> None:
    state = remember_message(ProfileState(), "m1", T0)
    assert dedup_decision(state, "m1", "other", T0 + 2 * DAY, DAY) is Dedup.REPEAT_MESSAGE


def test_window_is_half_open_on_trigger_time() -> None:
    state = remember_request(ProfileState(), "cart", T0)
    assert dedup_decision(state, "m2", "cart", T0 + DAY - timedelta(seconds=1), DAY) is (
        Dedup.WITHIN_WINDOW
    )
    assert dedup_decision(state, "m2", "cart", T0 + DAY, DAY) is Dedup.SEND
    assert dedup_decision(state, "m2", "browse", T0, DAY) is Dedup.SEND


def test_out_of_order_older_trigger_is_inside_the_window() -> None:
    state = remember_request(ProfileState(), "cart", T0)
    assert dedup_decision(state, "m0", "cart", T0 - timedelta(hours=1), DAY) is (
        Dedup.WITHIN_WINDOW
    )


def test_remember_request_keeps_the_latest_time_and_counts_sends() -> None:
    state = remember_request(remember_request(ProfileState(), "cart", T0), "cart", T0 - DAY)
    assert state.sent["cart"] == to_millis(T0)
    assert len(state.sends["cart"]) == 2


def test_prune_drops_what_is_older_than_retention() -> None:
    old = T0 - 3 * DAY
    state = remember_request(remember_message(ProfileState(), "old", old), "c", old)
    state = remember_message(state, "new", T0)
    pruned = prune(state, T0, 2 * DAY)
    assert set(pruned.seen) == {"new"}
    assert pruned.sent == {} and pruned.sends == {}


def test_json_round_trip_and_garbage_is_no_state() -> None:
    state = remember_request(remember_message(ProfileState(), "m", T0), "cart", T0)
    assert ProfileState.from_json(state.to_json()) == state
    assert ProfileState.from_json(None) == ProfileState()
    assert ProfileState.from_json({"seen": "x", "sends": {"c": "y"}}) == ProfileState()


def test_seen_keeps_the_source_and_result_and_reads_the_old_format() -> None:
    state = remember_message(ProfileState(), "m", T0, "triggers.raw:3:17", "request")
    assert ProfileState.from_json(state.to_json()) == state
    old = ProfileState.from_json({"seen": {"m": to_millis(T0)}, "sent": {}, "sends": {}})
    assert old.seen["m"].at == to_millis(T0) and old.seen["m"].result == ""


def test_forget_request_undoes_one_request() -> None:
    state = remember_request(remember_request(ProfileState(), "cart", T0 - DAY), "cart", T0)
    state = forget_request(state, "cart", to_millis(T0))
    assert state.sends["cart"] == (to_millis(T0 - DAY),)
    assert state.sent["cart"] == to_millis(T0 - DAY)
    assert forget_request(state, "cart", to_millis(T0 - DAY)) == ProfileState()


def test_prune_keeps_held_requests() -> None:
    pending = Pending("cart", "m", "t", to_millis(T0 - 3 * DAY), to_millis(T0 - 3 * DAY), "r")
    state = replace(ProfileState(), pending={"m": pending})
    assert prune(state, T0, DAY).pending == {"m": pending}


def test_an_out_of_order_trigger_counts_by_its_distance_from_the_last_request() -> None:
    from datetime import UTC, datetime, timedelta

    from services.processor.rules.dedup import Dedup, dedup_decision
    from services.processor.rules.state import ProfileState, to_millis

    last = datetime(2026, 1, 1, 12, tzinfo=UTC)
    state = ProfileState(sent={"cart": to_millis(last)})
    earlier = last - timedelta(minutes=5)
    assert dedup_decision(state, "m", "cart", earlier, timedelta(0)) is Dedup.SEND
    assert dedup_decision(state, "m", "cart", earlier, timedelta(hours=1)) is Dedup.WITHIN_WINDOW
    assert dedup_decision(state, "m", "cart", earlier, timedelta(minutes=5)) is Dedup.SEND
