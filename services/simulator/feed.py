"""The generator loop: draws envelopes at the configured rate and appends them to the log."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import fields

from services.simulator.catalog import (
    BROWSE_ABANDONMENT,
    CART_ABANDONMENT,
    PURCHASE,
    SEARCH_ABANDONMENT,
)
from services.simulator.generator import Generated, Mix, TriggerGenerator
from services.simulator.settings import SimulatorSettings
from services.simulator.state import SimulatorState, now_ms
from services.simulator.variability import Variability

log = logging.getLogger(__name__)
_UNTHROTTLED_CHUNK = 500  # with no rate limit, yield to the loop this often


def mix_from(settings: SimulatorSettings) -> Mix:
    """The generator's mix from the settings; every `Variability` share is a setting of its name."""
    return Mix(
        visitors=settings.visitors,
        profiles=settings.profiles,
        unprofiled_share=settings.unprofiled_share,
        weights=(
            (CART_ABANDONMENT, settings.cart_weight),
            (BROWSE_ABANDONMENT, settings.browse_weight),
            (SEARCH_ABANDONMENT, settings.search_weight),
            (PURCHASE, settings.purchase_weight),
        ),
        repeat_share=settings.repeat_share,
        malformed_share=settings.malformed_share,
        unknown_share=settings.unknown_share,
        variability=Variability(**{f.name: getattr(settings, f.name) for f in fields(Variability)}),
        ims_org=settings.ims_org,
        distinct_visitors=settings.distinct_visitors,
    )


def append(state: SimulatorState, generated: Generated) -> None:
    if generated.envelope is not None:
        state.append_envelope(generated.envelope, generated.kind)
    else:
        partition = state.partition_of_mcid(generated.mcid)
        state.append_raw(generated.raw or b"", generated.kind, partition)
    state.generated += 1


async def run_feed(state: SimulatorState) -> None:
    """Generate what the schedule asks for, then wait for the next schedule, until the app closes.

    The settings give the first schedule (none with `generate` off); `POST /simulator/generate`
    gives the next ones, each with its own count and rate.
    """
    generator = TriggerGenerator(mix_from(state.settings), state.settings.seed)
    while not state.closing:
        if not state.generating or state.done:
            await state.wait_for_schedule()
            continue
        await _generate(state, generator)


async def _generate(state: SimulatorState, generator: TriggerGenerator) -> None:
    """One schedule: until its target is reached (forever when there is none), the app closes,
    or a new schedule replaces it.

    Steady: one envelope every 1/rate s, so arrivals are spread evenly. Bursty: `burst` at
    once, then a pause of burst/rate s, so the average rate is the same. The schedule is
    absolute, so slow turns catch up.
    """
    schedule = state.schedule
    batch = schedule.burst or (1 if schedule.rate else _UNTHROTTLED_CHUNK)
    interval = batch / schedule.rate if schedule.rate else 0.0
    due = time.monotonic()
    while not state.closing and not state.done and state.schedule is schedule:
        remaining = (state.target - state.generated) if state.target is not None else batch
        for _ in range(min(batch, remaining)):
            append(state, generator.next(now_ms()))
        if state.done:
            log.info("generated the %d envelopes asked for; generator stopped", state.generated)
            return
        due += interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
