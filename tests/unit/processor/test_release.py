"""Releasing held requests on values: what is judged again when a hold falls due, one row each."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.processor.rules.decide import decide
from services.processor.rules.decision import Decision, Emit
from services.processor.rules.profile import ProfileView
from services.processor.rules.release import release_due
from services.processor.rules.rulebook import InputLimits, build_rulebook
from services.processor.rules.state import Pending, ProfileState
from tests.unit.processor.rulebook_fixtures import (
    AT_HAND,
    BOOK,
    CODEC,
    CONFIG,
    EMPTY,
    GONE,
    LISTED,
    MINUTE,
    NO_CONSENT,
    T0,
    arrival,
    summary,
)

DELAY = 30 * MINUTE


def held(message_id: str = "m1", at: datetime = T0) -> ProfileState:
    """The state after `reminder` held one request of a trigger at `at`."""
    trigger = arrival("reminder", message_id=message_id, at=at)
    decision = decide(trigger, AT_HAND, EMPTY, BOOK.route("reminder"), at, BOOK)
    assert isinstance(decision, Decision) and decision.state is not None
    return decision.state


WITHOUT_REMINDER = build_rulebook(
    CONFIG.model_copy(update={"campaigns": {"cart": CONFIG.campaigns["cart"]}}),
    InputLimits(),
    CODEC,
)

CASES = {
    "nothing due yet": (held(), T0 + DELAY - MINUTE, AT_HAND, ()),
    "due, profile not at hand": (held(), T0 + DELAY, None, ("lookup",)),
    "due": (held(), T0 + DELAY, AT_HAND, ("emit",)),
    "due in quiet hours": (
        held(at=T0.replace(hour=22)),
        T0.replace(hour=22) + DELAY,
        AT_HAND,
        ("emit (deferred)",),
    ),
    "expired while held": (
        held(at=T0 - timedelta(days=3)),
        T0,
        AT_HAND,
        ("expired:expired_while_held",),
    ),
    "the profile is gone": (held(), T0 + DELAY, GONE, ("unmatched:profile_gone",)),
    "consent withdrawn": (held(), T0 + DELAY, NO_CONSENT, ("suppressed:no_consent",)),
    "suppressed since": (held(), T0 + DELAY, LISTED, ("suppressed:hard_bounce",)),
}


@pytest.mark.parametrize(("state", "now", "view", "expected"), CASES.values(), ids=CASES.keys())
def test_release(
    state: ProfileState, now: datetime, view: ProfileView | None, expected: tuple[str, ...]
) -> None:
    assert summary(release_due("P1", state, view, now, BOOK)) == expected


def test_a_removed_campaign_ends_its_holds() -> None:
    decision = release_due("P1", held(), AT_HAND, T0 + DELAY, WITHOUT_REMINDER)
    assert summary(decision) == ("unrouted:campaign_removed",)


def test_validity_before_the_profile_and_the_profile_before_suppression() -> None:
    expired = held(at=T0 - timedelta(days=3))
    assert summary(release_due("P1", expired, GONE, T0, BOOK)) == ("expired:expired_while_held",)
    assert summary(release_due("P1", held(), GONE, T0 + DELAY, BOOK)) == ("unmatched:profile_gone",)


def test_due_holds_go_earliest_first_and_leave_the_state() -> None:
    both = held("m2", T0 + MINUTE)
    both = ProfileState(
        seen=both.seen,
        sent=both.sent,
        sends={"reminder": (*held().sends["reminder"], *both.sends["reminder"])},
        pending={**held().pending, **both.pending},
    )
    decision = release_due("P1", both, AT_HAND, T0 + DELAY + MINUTE, BOOK)
    assert isinstance(decision, Decision) and decision.state is not None
    emitted = [a.request.message_id for a in decision.actions if isinstance(a, Emit)]
    assert emitted == ["m1", "m2"]
    assert all(isinstance(a, Emit) and a.wait for a in decision.actions)  # broker first, then state
    assert decision.state.pending == {}
    assert len(decision.state.sends["reminder"]) == 2  # sent requests keep counting


def test_a_request_not_sent_leaves_dedup_and_caps() -> None:
    decision = release_due("P1", held(), LISTED, T0 + DELAY, BOOK)
    assert isinstance(decision, Decision) and decision.state is not None
    assert decision.state.pending == {} and decision.state.sends == {}
    assert decision.state.sent == {}


def test_pending_requests_are_opaque_to_the_state() -> None:
    (pending,) = held().pending.values()
    assert isinstance(pending, Pending) and CODEC.decode(pending.request).message_id == "m1"
