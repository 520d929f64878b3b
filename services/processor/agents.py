"""The faust agents: decode, call the rules, emit, record the outcome; one `try` per event.

Stage 1 (`resolve`, on triggers.raw, keyed by mcId): decode, refuse a trigger dated more than
`future_skew` ahead of the clock (`invalid:future_timestamp`, dead-lettered: its time would
never expire and would push the profile's history out of every window), route, resolve the
visitor to a profile in the routing file's identity precedence (the lookups of a batch of
records at once), re-key by profile id. Triggers that only cancel (a purchase) are resolved too,
so they reach their profile's state. Stage 2 (`decide`, on the repartition topic) has
`Decisions` apply `rules.decide` to each trigger and `rules.release` to each release tick; the
policies, their order and the reasons for it are told beside `rules.decide`.

No exception reaches faust's supervisor (it would ack the event and restart the agent, losing
it): `InvalidInput` is dead-lettered with outcome `invalid`; a database outage
(`TransientFailure`) is retried in place with capped exponential back-off until it succeeds, so
the trigger waits rather than being lost; anything else is a bug, dead-lettered with outcome
`failed` so the stream goes on and the record can be re-driven after the fix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.common.enrichments import Enrichments, parse_enrichments
from services.common.errors import InvalidInput
from services.common.health import Probes
from services.common.models import OutcomeStatus, utcnow
from services.common.pipeline_config import PipelineConfig
from services.common.serde import envelope_serde
from services.processor.app import Wiring
from services.processor.decisions import Decisions
from services.processor.held_requests import HeldRequests
from services.processor.metrics import LATENCY, TRIGGERS
from services.processor.outputs import Source, source_of
from services.processor.profiles import ProfileStore
from services.processor.recorder import Recorder, RetryPolicy
from services.processor.rules.decision import End
from services.processor.rules.identity import IdentityKey, identity_candidates, resolve_profile
from services.processor.rules.policies import FUTURE_TIMESTAMP, is_future_dated
from services.processor.rules.rulebook import InputLimits, build_rulebook, state_retention
from services.processor.rules.state import to_millis
from services.processor.rules.trigger import Trigger, trigger_from_record

log = logging.getLogger(__name__)

RESOLVE_BATCH = 200
RESOLVE_WAIT_S = 0.01

__all__ = ["InputLimits", "Pipeline", "RetryPolicy", "decode", "register_agents"]


def decode(value: bytes | None) -> tuple[Trigger, Enrichments]:
    """Envelope bytes -> trigger and its enrichments; `InvalidInput` says why not."""
    trigger = trigger_from_record(envelope_serde().decode(value))
    return trigger, parse_enrichments(trigger.enrichments)


@dataclass(frozen=True)
class _Routed:
    """A decoded trigger some campaign wants (or that cancels one), before its lookup."""

    source: Source
    trigger: Trigger
    campaign: str | None
    candidates: tuple[IdentityKey, ...]


class Pipeline:
    """What the agents do with one event; faust-free apart from the tables it is handed."""

    def __init__(
        self,
        wiring: Wiring,
        config: PipelineConfig,
        store: ProfileStore,
        retry: RetryPolicy,
        probes: Probes,
        clock: Callable[[], datetime] = utcnow,
        limits: InputLimits | None = None,
    ) -> None:
        self.outputs = wiring.outputs
        self.identity = config.identity
        self.book = build_rulebook(config, limits or InputLimits(), HeldRequests())
        self.store = store
        self.probes = probes
        self.clock = clock
        self.recorder = Recorder(wiring.outputs, retry, probes)
        self.decisions = Decisions(
            self.book,
            wiring.state,
            wiring.due,
            wiring.outputs,
            store,
            self.recorder,
            state_retention(config),
            clock,
        )
        self.due = wiring.due
        self._ticked: dict[str, float] = {}  # profile id -> monotonic time a tick may repeat

    # -- stage 1: triggers.raw -> repartition topic -------------------------------------------

    async def on_triggers(self, messages: Sequence[Any]) -> None:
        """Stage 1 for a batch of records, in order; each still ends on its own.

        The identities of the whole batch are looked up at once (one worker-thread call and one
        statement for what the cache lacks), so each trigger's own lookup is a cache hit.
        """
        started = time.perf_counter()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("stage 1 takes %s", " ".join(source_of(m).position for m in messages))
        routed: list[_Routed] = []
        for message in messages:
            source = source_of(message)
            try:
                item = await self._route(source)
            except InvalidInput as exc:
                await self.recorder.invalid("resolve", source, exc)
            except Exception as exc:
                await self.recorder.failed("resolve", source, exc)
            else:
                if item is not None:
                    routed.append(item)
        keys = [key for item in routed for key in item.candidates]
        if keys:
            try:
                await self.recorder.retrying(lambda: self.store.prefetch(keys))
            except Exception:  # each trigger's own lookup meets it again and records it
                log.exception("identity prefetch for %d triggers failed", len(routed))
        for item in routed:
            try:
                await self._resolve(item)
            except InvalidInput as exc:
                await self.recorder.invalid("resolve", item.source, exc)
            except Exception as exc:
                await self.recorder.failed("resolve", item.source, exc)
            LATENCY.labels("resolve").observe(time.perf_counter() - started)
        self.probes.beat()

    async def _route(self, source: Source) -> _Routed | None:
        """Decode and route; a future-dated trigger, or one no campaign covers, ends here with
        its outcome."""
        trigger, enrichments = decode(source.value)
        routed = self.book.route(trigger.trigger_id)
        campaign = None if routed is None else routed.name
        skew = self.book.limits.future_skew
        if is_future_dated(trigger.timestamp, self.clock(), skew):
            error = InvalidInput(
                FUTURE_TIMESTAMP,
                f"triggerTimestamp {trigger.timestamp.isoformat()} is more than {skew} ahead of "
                "the clock; the trigger is refused before it reaches any state",
            )
            log.warning("dead-lettering %s: %s", source.position, error)
            await self.outputs.dead_letter(source, FUTURE_TIMESTAMP, error)
            await self._end(source, trigger, OutcomeStatus.INVALID, FUTURE_TIMESTAMP, campaign)
            return None
        if campaign is None and not self.book.cancels(trigger.trigger_id):
            await self._end(source, trigger, OutcomeStatus.UNROUTED, "no_campaign", None)
            return None
        identity = self.identity
        candidates = identity_candidates(
            trigger.mc_id,
            enrichments,
            identity.declared_id_dimensions,
            identity.email_dimensions,
            identity.precedence,
        )
        return _Routed(source, trigger, campaign, candidates)

    async def _resolve(self, item: _Routed) -> None:
        """Find the profile and re-key the trigger by it, or end it as unmatched."""
        found = await self.recorder.retrying(lambda: self.store.find_profiles(item.candidates))
        profile_id = resolve_profile(item.candidates, found)
        if profile_id is None:
            await self.outputs.unmatched(item.source, "no_profile")
            status = OutcomeStatus.UNMATCHED
            await self._end(item.source, item.trigger, status, "no_profile", item.campaign)
            return
        await self.outputs.forward(profile_id, item.source)
        TRIGGERS.labels("resolve", "forwarded").inc()

    async def _end(
        self,
        source: Source,
        trigger: Trigger,
        status: OutcomeStatus,
        reason: str,
        campaign: str | None,
    ) -> None:
        """A stage 1 outcome: the trigger's ids and its triggers.raw position."""
        position = source.position
        end = End(
            status, trigger.message_id, reason, trigger.trigger_id, campaign, position=position
        )
        await self.recorder.record("resolve", end)

    # -- stage 2: repartition topic -> emails.<campaign> ----------------------------------------

    async def on_resolved(self, message: Any) -> None:
        started = time.perf_counter()
        source = source_of(message)
        try:
            if source.is_release_tick:
                profile_id = (source.key or b"").decode()
                self._ticked.pop(profile_id, None)
                await self.decisions.release(profile_id)
            else:
                trigger, enrichments = decode(source.value)
                await self.decisions.decide(source, trigger, enrichments)
        except InvalidInput as exc:
            await self.recorder.invalid("decide", source, exc)
        except Exception as exc:
            await self.recorder.failed("decide", source, exc)
        LATENCY.labels("decide").observe(time.perf_counter() - started)
        self.probes.beat()

    # -- the release timer ----------------------------------------------------------------------

    async def release_due(self, interval: timedelta) -> int:
        """Send a release tick for every local profile whose earliest hold is due; returns how
        many. A profile is not ticked again until its tick is handled or a few intervals pass."""
        now_ms = to_millis(self.clock())
        mono = time.monotonic()
        quiet = max(5 * interval.total_seconds(), 2.0)
        ticked = 0
        for key, due in list(self.due.items()):
            if not isinstance(due, int) or due > now_ms or self._ticked.get(key, 0.0) > mono:
                continue
            self._ticked[key] = mono + quiet
            await self.outputs.release_tick(str(key))
            ticked += 1
        if len(self._ticked) > 10_000:
            self._ticked = {k: v for k, v in self._ticked.items() if v > mono}
        return ticked


def register_agents(wiring: Wiring, pipeline: Pipeline, release_interval: timedelta) -> None:
    """Attach both stages and the release timer; concurrency 1 keeps each partition in order."""
    app = wiring.app

    @app.agent(wiring.triggers, name="resolve")  # type: ignore[misc]  # faust is untyped
    async def resolve(stream: Any) -> None:
        # Stage 1 keeps no state, so it may take records in batches: whatever is already
        # buffered (up to RESOLVE_BATCH) goes at once, and a lone record waits RESOLVE_WAIT_S at
        # most. faust acks a batch's events only after the body has handled all of them.
        async for events in stream.take_events(RESOLVE_BATCH, within=RESOLVE_WAIT_S):
            await pipeline.on_triggers([event.message for event in events])

    @app.agent(wiring.outputs.by_profile, name="decide")  # type: ignore[misc]
    async def decide(stream: Any) -> None:
        async for event in stream.events():
            await pipeline.on_resolved(event.message)

    @app.timer(release_interval.total_seconds(), on_leader=False)  # type: ignore[misc]
    async def release_due() -> None:
        try:
            await pipeline.release_due(release_interval)
        except Exception:  # the timer must keep running; the next tick retries
            log.exception("release timer failed; retrying at the next interval")
