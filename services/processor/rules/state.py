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


def to_millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


@dataclass(frozen=True)
class ProfileState:
    """Trigger times (epoch ms, the Analytics time) keyed by what they block."""

    seen: Mapping[str, int] = field(default_factory=dict)  # messageId -> trigger time
    sent: Mapping[str, int] = field(default_factory=dict)  # campaign -> last request's trigger time
    sends: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # campaign -> request times

    def to_json(self) -> dict[str, Any]:
        return {
            "seen": dict(self.seen),
            "sent": dict(self.sent),
            "sends": {campaign: list(times) for campaign, times in self.sends.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ProfileState:
        """Read a stored value; anything unreadable counts as no state (never blocks a profile)."""
        if not isinstance(data, Mapping):
            return cls()

        def ints(value: Any) -> dict[str, int]:
            if not isinstance(value, Mapping):
                return {}
            return {str(k): int(v) for k, v in value.items() if isinstance(v, int | float)}

        sends_raw = data.get("sends")
        sends = {
            str(campaign): tuple(int(t) for t in times if isinstance(t, int | float))
            for campaign, times in (sends_raw.items() if isinstance(sends_raw, Mapping) else ())
            if isinstance(times, list)
        }
        return cls(seen=ints(data.get("seen")), sent=ints(data.get("sent")), sends=sends)


def remember_message(state: ProfileState, message_id: str, at: datetime) -> ProfileState:
    return replace(state, seen={**state.seen, message_id: to_millis(at)})


def remember_request(state: ProfileState, campaign: str, at: datetime) -> ProfileState:
    """Record an email request: the dedup window and the frequency cap count from `at`."""
    millis = to_millis(at)
    return replace(
        state,
        sent={**state.sent, campaign: max(millis, state.sent.get(campaign, millis))},
        sends={**state.sends, campaign: (*state.sends.get(campaign, ()), millis)},
    )


def prune(state: ProfileState, at: datetime, retention: timedelta) -> ProfileState:
    """Drop entries older than `retention` before `at`, so state cannot grow without bound.

    `retention` must cover the longest dedup window, frequency-cap window and validity window:
    a repeat older than the validity window is expired anyway, so forgetting it is safe.
    """
    horizon = to_millis(at - retention)
    return ProfileState(
        seen={k: v for k, v in state.seen.items() if v >= horizon},
        sent={k: v for k, v in state.sent.items() if v >= horizon},
        sends={
            campaign: kept
            for campaign, times in state.sends.items()
            if (kept := tuple(t for t in times if t >= horizon))
        },
    )
