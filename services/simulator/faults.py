"""Faults on demand: what the next requests and streams of the simulator do wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

Target = Literal["pipeline", "ims"]


class FaultError(ValueError):
    """A fault request that names an unknown fault or a bad value."""


@dataclass
class Faults:
    """Counters of pending faults; each request or stream takes at most one."""

    pipeline_503: int = 0  # next N pipeline requests answer 503 with Retry-After
    pipeline_500: int = 0  # next N pipeline requests answer 500
    ims_503: int = 0  # next N IMS requests answer 503 with Retry-After
    ims_500: int = 0  # next N IMS requests answer 500
    ims_down: bool = False  # every IMS request answers 503 until cleared
    ims_delay_ms: int = 0  # every IMS answer waits this long, until cleared
    retry_after: int = 1  # seconds in Retry-After
    drop_streams: int = 0  # next N streams are cut in the middle of an envelope ...
    drop_after: int = 1  # ... after this many whole envelopes
    slow_ms: int = 0  # pause before every streamed envelope, until cleared

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update (`{"pipeline_503": 2, "retry_after": 3}`)."""
        known = {f.name: f.type for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise FaultError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            if known[name] == "bool":
                if not isinstance(value, bool):
                    raise FaultError(f"{name} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FaultError(f"{name} must be a non-negative integer")
            setattr(self, name, value)

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)

    def take_status(self, target: Target) -> int | None:
        """The error status the next request to `target` must answer with, if any."""
        if target == "ims" and self.ims_down:
            return 503
        for status in (503, 500):
            name = f"{target}_{status}"
            if getattr(self, name) > 0:
                setattr(self, name, getattr(self, name) - 1)
                return status
        return None

    def take_drop(self) -> int | None:
        """For a new stream: after how many envelopes to cut it, or None to leave it whole."""
        if self.drop_streams <= 0:
            return None
        self.drop_streams -= 1
        return self.drop_after

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)
