"""Faults the SMTP sink injects: at which stage, with what reply, how often and for how long."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

# "drop": the connection closes after the message data, before the reply, the message kept (a
# relay that queued it and then lost the client); "lose": the same, the message not kept (a
# relay that died before queueing it). Either way the client cannot tell whether it arrived.
FaultStage = Literal["mail", "rcpt", "data", "drop", "lose"]
ANY = "*"


@dataclass
class Fault:
    """One injected misbehaviour; `times` counts down to zero, None fires for ever; `seconds`
    ends it that long after it is set (None: never)."""

    stage: FaultStage
    reply: str | None = None
    delay: float = 0.0
    times: int | None = None
    seconds: float | None = None
    _ends: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.seconds is not None:
            self._ends = time.monotonic() + self.seconds

    def fire(self) -> bool:
        if self._ends is not None and time.monotonic() >= self._ends:
            return False
        if self.times is None:
            return True
        if self.times <= 0:
            return False
        self.times -= 1
        return True
