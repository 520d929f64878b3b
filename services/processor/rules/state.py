"""Per-profile decision state: what the processor remembers between triggers of one profile.

One value per profile id in a faust table whose changelog is compacted by that key, so the state
of a profile lives on one partition and expired entries are dropped whenever the profile is seen
again (`prune`), which keeps every value small.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

# How many recent cancel triggers of one kind a profile keeps for cancels that overtake their
# trigger: a handful covers any realistic burst, and bounds the value whatever the input.
CANCELS_KEPT = 8


def to_millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


@dataclass(frozen=True)
class Seen:
    """A handled messageId: its trigger time, where it was read and what was decided.

    `source` is the triggers.raw position of the first handling, so a redelivery of that very
    record (at-least-once after a crash or rebalance) is told apart from an upstream repeat, and
    `result` ("request", "held" or an outcome label) lets the redelivery repeat the decision.
    """

    at: int
    source: str = ""
    result: str = ""


@dataclass(frozen=True)
class Pending:
    """An email request held until `due_at` (epoch ms) so a cancel trigger can still stop it."""

    campaign: str
    message_id: str
    trigger_id: str
    trigger_at: int
    due_at: int
    request: str  # the encoded email request; opaque to the rules


@dataclass(frozen=True)
class ProfileState:
    """Trigger times (epoch ms, the Analytics time) keyed by what they block."""

    seen: Mapping[str, Seen] = field(default_factory=dict)  # messageId -> first handling
    sent: Mapping[str, int] = field(default_factory=dict)  # campaign -> last request's trigger time
    sends: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # campaign -> request times
    pending: Mapping[str, Pending] = field(default_factory=dict)  # messageId -> held request
    cancels: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # trigger id -> times

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "seen": {k: [v.at, v.source, v.result] for k, v in self.seen.items()},
            "sent": dict(self.sent),
            "sends": {campaign: list(times) for campaign, times in self.sends.items()},
        }
        if self.pending:
            data["pending"] = {
                k: [p.campaign, p.trigger_id, p.trigger_at, p.due_at, p.request]
                for k, p in self.pending.items()
            }
        if self.cancels:
            data["cancels"] = {k: list(v) for k, v in self.cancels.items()}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ProfileState:
        """Read a stored value; anything unreadable counts as no state (never blocks a profile)."""
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            seen=_seen(data.get("seen")),
            sent={k: v[0] for k, v in _times(data.get("sent"), scalar=True).items()},
            sends=_times(data.get("sends")),
            pending=_pending(data.get("pending")),
            cancels=_times(data.get("cancels")),
        )


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _times(value: Any, scalar: bool = False) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for key, item in _mapping(value).items():
        if scalar and isinstance(item, int | float):
            out[str(key)] = (int(item),)
        elif not scalar and isinstance(item, list):
            out[str(key)] = tuple(int(t) for t in item if isinstance(t, int | float))
    return out


def _seen(value: Any) -> dict[str, Seen]:
    out: dict[str, Seen] = {}
    for key, item in _mapping(value).items():
        if isinstance(item, int | float):  # the earlier format: the trigger time only
            out[str(key)] = Seen(int(item))
        elif isinstance(item, list) and len(item) == 3 and isinstance(item[0], int | float):
            out[str(key)] = Seen(int(item[0]), str(item[1]), str(item[2]))
    return out


def _pending(value: Any) -> dict[str, Pending]:
    out: dict[str, Pending] = {}
    for key, item in _mapping(value).items():
        if isinstance(item, list) and len(item) == 5:
            campaign, trigger_id, trigger_at, due_at, request = item
            out[str(key)] = Pending(
                str(campaign), str(key), str(trigger_id), int(trigger_at), int(due_at), str(request)
            )
    return out


def remember_message(
    state: ProfileState, message_id: str, at: datetime, source: str = "", result: str = ""
) -> ProfileState:
    return replace(state, seen={**state.seen, message_id: Seen(to_millis(at), source, result)})


def remember_request(state: ProfileState, campaign: str, at: datetime) -> ProfileState:
    """Record an email request: the dedup window and the frequency cap count from `at`."""
    millis = to_millis(at)
    return replace(
        state,
        sent={**state.sent, campaign: max(millis, state.sent.get(campaign, millis))},
        sends={**state.sends, campaign: (*state.sends.get(campaign, ()), millis)},
    )


def forget_request(state: ProfileState, campaign: str, at_ms: int) -> ProfileState:
    """Undo `remember_request` for a request that was never sent (cancelled, expired on hold)."""
    times = list(state.sends.get(campaign, ()))
    if at_ms in times:
        times.remove(at_ms)
    sends = {k: v for k, v in state.sends.items() if k != campaign}
    sent = {k: v for k, v in state.sent.items() if k != campaign}
    if times:
        sends[campaign] = tuple(times)
        sent[campaign] = max(times)
    return replace(state, sends=sends, sent=sent)


def newest_time(state: ProfileState) -> datetime | None:
    """The latest trigger time the state knows: the reference point of `prune`."""
    times = [
        *(s.at for s in state.seen.values()),
        *state.sent.values(),
        *(t for times in state.cancels.values() for t in times),
    ]
    return from_millis(max(times)) if times else None


def pruned(state: ProfileState, retention: timedelta) -> ProfileState:
    """The state as it is stored: `prune`d relative to the newest trigger time it knows."""
    newest = newest_time(state)
    return state if newest is None else prune(state, newest, retention)


def prune(state: ProfileState, at: datetime, retention: timedelta) -> ProfileState:
    """Drop entries older than `retention` before `at`, so state cannot grow without bound.

    `retention` must cover the longest dedup window, frequency-cap window and validity window:
    a repeat older than the validity window is expired anyway, so forgetting it is safe. Held
    requests are never pruned: only their release or a cancel ends them, with an outcome.
    """
    horizon = to_millis(at - retention)
    return replace(
        state,
        seen={k: v for k, v in state.seen.items() if v.at >= horizon},
        sent={k: v for k, v in state.sent.items() if v >= horizon},
        sends={
            campaign: kept
            for campaign, times in state.sends.items()
            if (kept := tuple(t for t in times if t >= horizon))
        },
        cancels={
            trigger: kept[-CANCELS_KEPT:]
            for trigger, times in state.cancels.items()
            if (kept := tuple(t for t in times if t >= horizon))
        },
    )
