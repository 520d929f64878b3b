"""The simulator's shared state: the topic log, issued tokens, faults, group offsets, counters."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from services.simulator.faults import Faults
from services.simulator.log import Entry, TopicLog
from services.simulator.rules.consume import partition_for
from services.simulator.settings import SimulatorSettings
from services.simulator.tokens import TokenStore

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Schedule:
    """How the generator paces envelopes: `rate` per second (0: as fast as it can), `burst` at
    once (0: one at a time)."""

    rate: float
    burst: int = 0


class SimulatorState:
    """Everything the endpoints share; used only from the event loop's thread."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.log = TopicLog(
            settings.topic, settings.partitions, settings.retention_messages, settings.retention_age
        )
        self.tokens = TokenStore()
        self.faults = Faults()
        self.group_offsets: dict[str, dict[int, int]] = {}
        self.kinds: Counter[str] = Counter()
        self.ims_calls: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.resets = 0
        self.streams_open = 0
        self.target: int | None = settings.triggers or None
        self.generated = 0
        self.generating = settings.generate
        self.schedule = Schedule(settings.rate, settings.burst)
        self.closing = False
        self._appended: asyncio.Event | None = None
        self._rescheduled: asyncio.Event | None = None

    @property
    def emitted(self) -> int:
        """Every envelope appended so far: generated (repeats and malformed included), injected."""
        return sum(self.kinds.values())

    @property
    def done(self) -> bool:
        return self.target is not None and self.generated >= self.target

    def append_envelope(
        self, envelope: dict[str, Any], kind: str, partition: int | None = None
    ) -> Entry:
        """Append a DATA envelope on its visitor's partition (or the one given)."""
        if partition is None:
            partition = self.partition_of(envelope)
        entry = self.log.append_envelope(envelope, partition, now_ms())
        self._appended_one(kind)
        return entry

    def append_raw(self, line: bytes, kind: str, partition: int) -> Entry:
        entry = self.log.append_raw(line, partition, now_ms())
        self._appended_one(kind)
        return entry

    def partition_of_mcid(self, mcid: str) -> int:
        return partition_for(mcid, len(self.log.partitions))

    async def wait_for_append(self, seconds: float) -> None:
        """Return when something is appended, on shutdown, or after `seconds`."""
        event = self._event()
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return

    def generate(self, count: int, schedule: Schedule) -> None:
        """Generate `count` more envelopes (0: without end) at `schedule`, from now on; a
        schedule still running is replaced."""
        self.target = self.generated + count if count else None
        self.schedule = schedule
        self.generating = True
        if self._rescheduled is not None:
            self._rescheduled.set()
        self._rescheduled = None

    async def wait_for_schedule(self, seconds: float = 1.0) -> None:
        """Return when a new schedule is set, or after `seconds` (to notice shutdown)."""
        if self._rescheduled is None:
            self._rescheduled = asyncio.Event()
        try:
            await asyncio.wait_for(self._rescheduled.wait(), seconds)
        except TimeoutError:
            return

    def wake_all(self) -> None:
        event = self._event()
        event.set()
        self._appended = asyncio.Event()

    def stats(self) -> dict[str, Any]:
        at = now_ms()
        return {
            "emitted": self.emitted,
            "target": self.target,
            "done": self.done,
            "generated": self.generated,
            "generating": self.generating,
            "rate": self.schedule.rate,
            "by_kind": dict(self.kinds),
            "partitions": {
                str(p): {"earliest": part.earliest(at), "high": part.high}
                for p, part in enumerate(self.log.partitions)
            },
            "ims_calls": dict(self.ims_calls),
            "rejected": dict(self.rejected),
            "resets": self.resets,
            "streams_open": self.streams_open,
            "group_offsets": {
                g: {str(p): o for p, o in offsets.items()}
                for g, offsets in self.group_offsets.items()
            },
        }

    def partition_of(self, envelope: dict[str, Any]) -> int:
        """The visitor's partition by mcId; a trigger without a real one (absent, empty, all
        zeros) goes by its messageId instead, so those do not all pile onto one partition."""
        message = envelope.get("com.adobe.mcloud.pipeline.pipelineMessage")
        trigger = (
            message.get("com.adobe.mcloud.protocol.trigger") if isinstance(message, dict) else None
        )
        mcid = str(trigger.get("mcId") or "") if isinstance(trigger, dict) else ""
        if not mcid.strip("0 "):
            header = message.get("header") if isinstance(message, dict) else None
            mcid = str(header.get("messageId") or "") if isinstance(header, dict) else ""
        return self.partition_of_mcid(mcid)

    def _appended_one(self, kind: str) -> None:
        self.kinds[kind] += 1
        self.wake_all()

    def _event(self) -> asyncio.Event:
        if self._appended is None:
            self._appended = asyncio.Event()
        return self._appended
