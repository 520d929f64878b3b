"""Cancel windows: hold a delayed campaign's request, cancel it, release it when due.

A campaign with a `delay` does not mail at once: its request is held in the profile's state
until `due_at = trigger time + delay`. A trigger named in the campaign's `cancel_on`, from the
same profile, whose own time lies in `[trigger time, due_at]` (both ends inclusive) cancels it.
A cancel can overtake its trigger (another identity, another upstream partition), so recent
cancels are remembered and checked when a trigger is held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from services.processor.rules.routing import normal_trigger_id
from services.processor.rules.state import (
    CANCELS_KEPT,
    Pending,
    ProfileState,
    forget_request,
    to_millis,
)


def hold(state: ProfileState, pending: Pending) -> ProfileState:
    return replace(state, pending={**state.pending, pending.message_id: pending})


def settle(state: ProfileState, message_id: str) -> ProfileState:
    """Drop a held request that has been released, with no effect on dedup or caps."""
    return replace(state, pending={k: v for k, v in state.pending.items() if k != message_id})


def cancel_pending(
    state: ProfileState,
    trigger_id: str,
    at: datetime,
    cancel_on: Mapping[str, frozenset[str]],
) -> tuple[ProfileState, list[Pending]]:
    """Cancel the held requests this trigger cancels; returns the new state and what it cancelled.

    `cancel_on` maps campaign -> normalised trigger ids that cancel it. A cancelled request is
    also taken out of the dedup and frequency-cap record: it was never sent.
    """
    millis = to_millis(at)
    key = normal_trigger_id(trigger_id)
    cancelled = [
        p
        for p in state.pending.values()
        if key in cancel_on.get(p.campaign, frozenset()) and p.trigger_at <= millis <= p.due_at
    ]
    for pending in cancelled:
        state = forget_request(
            settle(state, pending.message_id), pending.campaign, pending.trigger_at
        )
    return state, cancelled


def remember_cancel(state: ProfileState, trigger_id: str, at: datetime) -> ProfileState:
    """Keep a cancel trigger's time briefly, for a trigger it overtook (last `CANCELS_KEPT`)."""
    key = normal_trigger_id(trigger_id)
    times = tuple(sorted({*state.cancels.get(key, ()), to_millis(at)}))[-CANCELS_KEPT:]
    return replace(state, cancels={**state.cancels, key: times})


def cancelled_in_advance(
    state: ProfileState, cancel_on: Iterable[str], trigger_at: datetime, due_at: datetime
) -> bool:
    """Whether a remembered cancel already falls in this trigger's window `[trigger, due]`."""
    low, high = to_millis(trigger_at), to_millis(due_at)
    return any(
        low <= t <= high
        for trigger_id in cancel_on
        for t in state.cancels.get(normal_trigger_id(trigger_id), ())
    )


def due_pending(state: ProfileState, now: datetime) -> list[Pending]:
    """Held requests whose `due_at` has passed (wall clock), earliest first."""
    millis = to_millis(now)
    return sorted((p for p in state.pending.values() if p.due_at <= millis), key=lambda p: p.due_at)


def next_due(state: ProfileState) -> int | None:
    """The earliest `due_at` of the held requests (epoch ms), for the release timer's index."""
    return min((p.due_at for p in state.pending.values()), default=None)
