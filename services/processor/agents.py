"""The faust agents: decode, call the rules, emit, record the outcome; one `try` per event.

Stage 1 (`resolve`, on triggers.raw, keyed by mcId): decode, route, resolve the visitor to a
profile, re-key by profile id. Stage 2 (`decide`, on the repartition topic): dedup against the
profile's state, emit the email request. Every trigger ends in exactly one outcome here, unless it
became an email request (the mailer records that outcome).

No exception reaches faust's supervisor (it would ack the event and restart the agent, losing
it): `InvalidInput` is dead-lettered with outcome `invalid`; a database outage
(`TransientFailure`) is retried in place with capped exponential back-off until it succeeds, so
the trigger waits rather than being lost; anything else is a bug, dead-lettered with outcome
`failed` so the stream goes on and the record can be re-driven after the fix.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from services.common.backoff import backoff_delay
from services.common.errors import InvalidInput, TransientFailure
from services.common.health import Probes
from services.common.models import Outcome, OutcomeStatus
from services.common.pipeline_config import PipelineConfig
from services.common.serde import envelope_serde
from services.processor.app import Wiring
from services.processor.metrics import DB_RETRIES, LATENCY, TRIGGERS
from services.processor.outputs import SERVICE, Source, source_of
from services.processor.profiles import ProfileStore
from services.processor.rules.dedup import Dedup, dedup_decision
from services.processor.rules.enrichments import Enrichments, parse_enrichments
from services.processor.rules.identity import identity_candidates, resolve_profile
from services.processor.rules.request import build_email_request
from services.processor.rules.routing import build_routes, route_trigger
from services.processor.rules.state import (
    ProfileState,
    from_millis,
    prune,
    remember_message,
    remember_request,
)
from services.processor.rules.trigger import Trigger, trigger_from_record

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    initial: timedelta
    maximum: timedelta


def decode(value: bytes | None) -> tuple[Trigger, Enrichments]:
    """Envelope bytes -> trigger and its enrichments; `InvalidInput` says why not."""
    trigger = trigger_from_record(envelope_serde().decode(value))
    return trigger, parse_enrichments(trigger.enrichments)


def state_retention(config: PipelineConfig) -> timedelta:
    """How long per-profile entries must live: the longest window any campaign looks back."""
    spans = [timedelta(days=1)]
    for campaign in config.campaigns.values():
        spans += [campaign.dedup_window, campaign.validity + campaign.delay]
        if campaign.frequency_cap is not None:
            spans.append(campaign.frequency_cap.window)
    return max(spans)


class Pipeline:
    """What the agents do with one event; faust-free apart from the table it is handed."""

    def __init__(
        self,
        wiring: Wiring,
        config: PipelineConfig,
        store: ProfileStore,
        retry: RetryPolicy,
        probes: Probes,
    ) -> None:
        self.outputs = wiring.outputs
        self.state = wiring.state
        self.config = config
        self.routes = build_routes(config)
        self.retention = state_retention(config)
        self.store = store
        self.retry = retry
        self.probes = probes

    # -- stage 1: triggers.raw -> repartition topic -------------------------------------------

    async def on_trigger(self, message: Any) -> None:
        started = time.perf_counter()
        source = source_of(message)
        try:
            await self._route_and_resolve(source)
        except InvalidInput as exc:
            await self._invalid("resolve", source, exc)
        except Exception as exc:
            await self._failed("resolve", source, exc)
        LATENCY.labels("resolve").observe(time.perf_counter() - started)
        self.probes.beat()

    async def _route_and_resolve(self, source: Source) -> None:
        trigger, enrichments = decode(source.value)
        campaign = route_trigger(trigger.trigger_id, self.routes)
        if campaign is None:
            await self._outcome("resolve", OutcomeStatus.UNROUTED, trigger, source, "no_campaign")
            return
        identity = self.config.identity
        candidates = identity_candidates(
            trigger.mc_id,
            enrichments,
            identity.declared_id_dimensions,
            identity.email_dimensions,
        )
        found = await self._retrying(lambda: self.store.find_profiles(candidates))
        resolution = resolve_profile(candidates, found)
        if resolution is None:
            await self.outputs.unmatched(source, "no_profile")
            await self._outcome(
                "resolve", OutcomeStatus.UNMATCHED, trigger, source, "no_profile", campaign
            )
            return
        await self.outputs.forward(resolution.profile_id, source)
        TRIGGERS.labels("resolve", "forwarded").inc()

    # -- stage 2: repartition topic -> emails.<campaign> ----------------------------------------

    async def on_resolved(self, message: Any) -> None:
        started = time.perf_counter()
        source = source_of(message)
        try:
            await self._decide(source)
        except InvalidInput as exc:
            await self._invalid("decide", source, exc)
        except Exception as exc:
            await self._failed("decide", source, exc)
        LATENCY.labels("decide").observe(time.perf_counter() - started)
        self.probes.beat()

    async def _decide(self, source: Source) -> None:
        trigger, enrichments = decode(source.value)
        profile_id = (source.key or b"").decode()
        campaign = route_trigger(trigger.trigger_id, self.routes)
        if campaign is None or not profile_id:  # the routing file changed between the stages
            await self._outcome("decide", OutcomeStatus.UNROUTED, trigger, source, "no_campaign")
            return
        policy = self.config.campaigns[campaign]
        state = ProfileState.from_json(self.state.get(profile_id))
        verdict = dedup_decision(
            state, trigger.message_id, campaign, trigger.timestamp, policy.dedup_window
        )
        if verdict is Dedup.REPEAT_MESSAGE:
            await self._outcome(
                "decide",
                OutcomeStatus.DUPLICATE,
                trigger,
                source,
                verdict.value,
                campaign,
                profile_id,
            )
            return
        if verdict is Dedup.WITHIN_WINDOW:
            self._save(profile_id, remember_message(state, trigger.message_id, trigger.timestamp))
            await self._outcome(
                "decide",
                OutcomeStatus.DUPLICATE,
                trigger,
                source,
                verdict.value,
                campaign,
                profile_id,
            )
            return
        profile = await self._retrying(lambda: self.store.profile(profile_id))
        if profile is None:  # deleted since stage 1: re-drivable like any unmatched trigger
            await self.outputs.unmatched(source, "profile_gone")
            await self._outcome(
                "decide",
                OutcomeStatus.UNMATCHED,
                trigger,
                source,
                "profile_gone",
                campaign,
                profile_id,
            )
            return
        personalisation = self.config.personalisation
        request = build_email_request(
            campaign=campaign,
            trigger=trigger,
            enrichments=enrichments,
            profile_id=profile.profile_id,
            email=profile.email,
            first_name=profile.first_name,
            locale=profile.locale,
            product_dimensions=personalisation.product_dimensions,
            variable_dimensions=personalisation.variables,
            validity=policy.validity,
        )
        await self.outputs.email_request(request)
        state = remember_request(
            remember_message(state, trigger.message_id, trigger.timestamp),
            campaign,
            trigger.timestamp,
        )
        self._save(profile_id, state)
        TRIGGERS.labels("decide", "requested").inc()

    def _save(self, profile_id: str, state: ProfileState) -> None:
        # Pruned on every write, relative to the trigger being handled: the value stays small
        # and the compacted changelog keeps one record per profile.
        times = [*state.seen.values(), *state.sent.values()]
        if times:
            newest = max(times)
            state = prune(state, from_millis(newest), self.retention)
        self.state[profile_id] = state.to_json()

    # -- shared ---------------------------------------------------------------------------------

    async def _retrying(self, work: Callable[[], Awaitable[T]]) -> T:
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

    async def _outcome(
        self,
        stage: str,
        status: OutcomeStatus,
        trigger: Trigger,
        source: Source,
        reason: str | None = None,
        campaign: str | None = None,
        profile_id: str | None = None,
    ) -> None:
        await self.outputs.outcome(
            Outcome(
                status=status,
                message_id=trigger.message_id,
                service=SERVICE,
                reason=reason,
                trigger_id=trigger.trigger_id,
                campaign=campaign,
                profile_id=profile_id,
                detail={"source": source.position},
            )
        )
        TRIGGERS.labels(stage, status.value).inc()

    async def _invalid(self, stage: str, source: Source, exc: InvalidInput) -> None:
        log.warning("dead-lettering %s: %s", source.position, exc)
        await self.outputs.dead_letter(source, exc.reason, exc)
        await self.outputs.outcome(
            Outcome(
                status=OutcomeStatus.INVALID,
                message_id=source.position,  # the envelope had no readable messageId
                service=SERVICE,
                reason=exc.reason,
                detail={"source": source.position},
            )
        )
        TRIGGERS.labels(stage, OutcomeStatus.INVALID.value).inc()

    async def _failed(self, stage: str, source: Source, exc: Exception) -> None:
        log.exception("unexpected error on %s; dead-lettered, the stream goes on", source.position)
        reason = f"unexpected:{type(exc).__name__}"
        await self.outputs.dead_letter(source, reason, exc)
        await self.outputs.outcome(
            Outcome(
                status=OutcomeStatus.FAILED,
                message_id=source.position,
                service=SERVICE,
                reason=reason,
                detail={"source": source.position},
            )
        )
        TRIGGERS.labels(stage, OutcomeStatus.FAILED.value).inc()


def register_agents(wiring: Wiring, pipeline: Pipeline) -> None:
    """Attach both stages to the App; concurrency 1 keeps each partition in order."""
    app = wiring.app

    @app.agent(wiring.triggers, name="resolve")  # type: ignore[misc]  # faust is untyped
    async def resolve(stream: Any) -> None:
        async for event in stream.events():
            await pipeline.on_trigger(event.message)

    @app.agent(wiring.outputs.by_profile, name="decide")  # type: ignore[misc]
    async def decide(stream: Any) -> None:
        async for event in stream.events():
            await pipeline.on_resolved(event.message)
