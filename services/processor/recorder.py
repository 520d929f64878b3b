"""Recording what became of a trigger: outcomes, dead letters, and waiting out DB outages."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from services.common.backoff import backoff_delay
from services.common.errors import InvalidInput, TransientFailure
from services.common.health import Probes
from services.common.models import Outcome, OutcomeStatus
from services.processor.metrics import DB_RETRIES, OUTCOMES, TRIGGERS
from services.processor.outputs import SERVICE, Outputs, Source
from services.processor.rules.decision import End

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    initial: timedelta
    maximum: timedelta


def reason_kind(reason: str | None) -> str:
    """The part of a reason a metric may carry: `cancelled_by:<messageId>` counts as
    `cancelled_by`, so the label's values stay few."""
    return (reason or "").partition(":")[0]


class Recorder:
    """Writes outcomes and dead letters, and retries lookups through database outages."""

    def __init__(self, outputs: Outputs, retry: RetryPolicy, probes: Probes) -> None:
        self.outputs = outputs
        self.retry = retry
        self.probes = probes

    async def retrying(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work` until it stops failing transiently; readiness is off while it fails."""
        attempt = 0
        while True:
            try:
                result = await work()
            except TransientFailure as exc:
                attempt += 1
                delay = backoff_delay(
                    attempt,
                    self.retry.initial,
                    self.retry.maximum,
                    random.random(),
                    exc.retry_after,
                )
                DB_RETRIES.inc()
                self.probes.not_ready("database", str(exc))
                log.warning(
                    "%s; retry %d in %.1fs (the trigger waits, nothing is dropped)",
                    exc,
                    attempt,
                    delay.total_seconds(),
                )
                await asyncio.sleep(delay.total_seconds())
                self.probes.beat()  # waiting on purpose is not a stalled loop
                continue
            if attempt:
                self.probes.ready("database")
                log.info("database lookups work again after %d retries", attempt)
            return result

    async def record(self, stage: str, end: End) -> None:
        """Publish one terminal outcome and count it.

        The end's `detail` goes into the outcome's details (e.g. the variable a
        `skipped:missing_data` trigger lacked), with its triggers.raw position when known.
        """
        position = {"source": end.position} if end.position else {}
        await self.outputs.outcome(
            Outcome(
                end.status,
                end.message_id,
                SERVICE,
                end.reason,
                end.trigger_id,
                end.campaign,
                end.profile_id,
                detail={**(end.detail or {}), **position},
            )
        )
        TRIGGERS.labels(stage, end.status.value).inc()
        OUTCOMES.labels(end.status.value, reason_kind(end.reason)).inc()

    async def invalid(self, stage: str, source: Source, exc: InvalidInput) -> None:
        log.warning("dead-lettering %s: %s", source.position, exc)
        await self.outputs.dead_letter(source, exc.reason, exc)
        # the envelope had no readable messageId: its position names it
        position = source.position
        await self.record(
            stage, End(OutcomeStatus.INVALID, position, exc.reason, position=position)
        )

    async def failed(self, stage: str, source: Source, exc: Exception) -> None:
        log.exception("unexpected error on %s; dead-lettered, the stream goes on", source.position)
        reason = f"unexpected:{type(exc).__name__}"
        await self.outputs.dead_letter(source, reason, exc)
        position = source.position
        await self.record(stage, End(OutcomeStatus.FAILED, position, reason, position=position))
