"""Stage 2 of the agents: one resolved trigger (or a release tick) against its profile's state.

The policy order and its reasons are in the `agents` module docstring; `_policies` follows it.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from services.common.enrichments import Enrichments
from services.common.models import EmailRequest, OutcomeStatus
from services.common.personalisation import LinkPolicy, MissingData, Personalised, personalise
from services.common.pipeline_config import Campaign, PipelineConfig, Variable
from services.common.serde import email_request_serde
from services.processor.app import Wiring
from services.processor.metrics import FALLBACKS, TRIGGERS
from services.processor.outputs import Source
from services.processor.profiles import Profile, ProfileStore
from services.processor.recorder import Recorder, parse_label
from services.processor.rules.cancel import (
    cancel_pending,
    cancelled_in_advance,
    due_pending,
    hold,
    next_due,
    normal_trigger_id,
    remember_cancel,
    settle,
)
from services.processor.rules.dedup import Dedup, dedup_decision
from services.processor.rules.policies import (
    FREQUENCY_CAPPED,
    FUTURE_TIMESTAMP,
    MISSING_DATA,
    is_expired,
    is_future_dated,
    quiet_hours_end,
    quiet_zone,
    sends_counted_by_caps,
    suppression_reason,
    within_frequency_cap,
)
from services.processor.rules.request import build_email_request
from services.processor.rules.routing import build_routes, route_trigger
from services.processor.rules.state import (
    Pending,
    ProfileState,
    forget_request,
    from_millis,
    newest_time,
    prune,
    remember_message,
    remember_request,
    to_millis,
)
from services.processor.rules.trigger import Trigger

log = logging.getLogger(__name__)

STAGE = "decide"
REQUESTED = "request"  # results remembered per messageId besides outcome labels
HELD = "held"


@dataclass(frozen=True)
class InputLimits:
    """The processor settings that guard against hostile or broken trigger data."""

    future_skew: timedelta = timedelta(minutes=5)
    allow_http_links: bool = False


@dataclass(frozen=True)
class CampaignPersonalisation:
    """One campaign's variable declarations and link policy, resolved once at start-up."""

    declarations: Mapping[str, Variable]
    links: LinkPolicy


def encode_request(request: EmailRequest) -> str:
    return base64.b64encode(email_request_serde().encode(request.to_record())).decode()


def decode_request(text: str) -> EmailRequest:
    return EmailRequest.from_record(email_request_serde().decode(base64.b64decode(text)))


class Decisions:
    """Reads a profile's state, applies the rules in order, emits, writes the state back."""

    def __init__(
        self,
        wiring: Wiring,
        config: PipelineConfig,
        store: ProfileStore,
        recorder: Recorder,
        retention: timedelta,
        clock: Callable[[], datetime],
        limits: InputLimits | None = None,
    ) -> None:
        self.outputs = wiring.outputs
        self.state = wiring.state
        self.due = wiring.due
        self.config = config
        self.routes = build_routes(config)
        self.store = store
        self.recorder = recorder
        self.retention = retention
        self.clock = clock
        self.cancel_on = {
            name: frozenset(normal_trigger_id(t) for t in campaign.cancel_on)
            for name, campaign in config.campaigns.items()
        }
        self.cancellers: frozenset[str] = frozenset().union(*self.cancel_on.values())
        self.transactional = frozenset(
            name for name, c in config.campaigns.items() if c.category == "transactional"
        )
        self.limits = limits or InputLimits()
        self.personalisation = {
            name: CampaignPersonalisation(
                config.campaign_variables(name), LinkPolicy.of(c, self.limits.allow_http_links)
            )
            for name, c in config.campaigns.items()
        }

    # -- one trigger ----------------------------------------------------------------------------

    async def decide(self, source: Source, trigger: Trigger, enrichments: Enrichments) -> None:
        profile_id = (source.key or b"").decode()
        campaign = route_trigger(trigger.trigger_id, self.routes)
        cancels = normal_trigger_id(trigger.trigger_id) in self.cancellers
        if (campaign is None and not cancels) or not profile_id:  # the routing file changed
            await self._end(trigger, source, OutcomeStatus.UNROUTED, "no_campaign", None, None)
            return
        if is_future_dated(trigger.timestamp, self.clock(), self.limits.future_skew):
            # Stage 1 refuses these; a worker whose clock is behind stage 1's may still meet
            # one. Its time must not reach the state (see `is_future_dated`), so it ends here.
            status, reason = OutcomeStatus.INVALID, FUTURE_TIMESTAMP
            await self._end(trigger, source, status, reason, campaign, profile_id)
            return
        before = self._load(profile_id)
        seen = before.seen.get(trigger.message_id)
        if seen is not None:
            if seen.source == source.origin and seen.result:
                await self._repeat(seen.result, source, trigger, enrichments, campaign, profile_id)
            else:
                await self._end(
                    trigger,
                    source,
                    OutcomeStatus.DUPLICATE,
                    Dedup.REPEAT_MESSAGE.value,
                    campaign,
                    profile_id,
                )
            return
        state = before
        if cancels:
            state = await self._cancel(state, trigger, profile_id)
        if campaign is None:
            result = await self._end(
                trigger, source, OutcomeStatus.UNROUTED, "cancel_signal", None, profile_id
            )
        else:
            result, state = await self._policies(
                state, source, trigger, enrichments, campaign, profile_id
            )
        state = remember_message(
            state, trigger.message_id, trigger.timestamp, source.origin, result
        )
        self._save(profile_id, state, before)

    async def _policies(
        self,
        state: ProfileState,
        source: Source,
        trigger: Trigger,
        enrichments: Enrichments,
        campaign: str,
        profile_id: str,
    ) -> tuple[str, ProfileState]:
        """Steps 1-7 of the agents docstring; returns the remembered result and the state."""
        policy = self.config.campaigns[campaign]
        now = self.clock()
        at = trigger.timestamp
        ended = (trigger, source)

        verdict = dedup_decision(state, trigger.message_id, campaign, at, policy.dedup_window)
        if verdict is Dedup.WITHIN_WINDOW:
            status, reason = OutcomeStatus.DUPLICATE, verdict.value
            return await self._end(*ended, status, reason, campaign, profile_id), state
        if is_expired(at, now, policy.validity):
            status, reason = OutcomeStatus.EXPIRED, "stale_trigger"
            return await self._end(*ended, status, reason, campaign, profile_id), state
        personal = self._personalise(campaign, enrichments)
        if isinstance(personal, MissingData):
            status, reason, detail = OutcomeStatus.SKIPPED, MISSING_DATA, personal.detail()
            return await self._end(*ended, status, reason, campaign, profile_id, detail), state
        profile = await self.recorder.retrying(lambda: self.store.profile(profile_id))
        if profile is None:  # deleted since stage 1: re-drivable like any unmatched trigger
            await self.outputs.unmatched(source, "profile_gone")
            status, reason = OutcomeStatus.UNMATCHED, "profile_gone"
            return await self._end(*ended, status, reason, campaign, profile_id), state
        suppressed = await self._suppressed(policy, profile)
        if suppressed is not None:
            status, reason = OutcomeStatus.SUPPRESSED, suppressed
            return await self._end(*ended, status, reason, campaign, profile_id), state
        cap = policy.frequency_cap
        if cap is not None and policy.category != "transactional":
            earlier = sends_counted_by_caps(
                {c: [from_millis(t) for t in times] for c, times in state.sends.items()},
                self.transactional,
            )
            if not within_frequency_cap(earlier, at, cap.count, cap.window):
                status, reason = OutcomeStatus.SUPPRESSED, FREQUENCY_CAPPED
                return await self._end(*ended, status, reason, campaign, profile_id), state
        request = self._request(campaign, policy, trigger, enrichments, personal, profile)
        if policy.delay > timedelta(0):
            due = at + policy.delay
            if cancelled_in_advance(state, policy.cancel_on, at, due):
                status, reason = OutcomeStatus.CANCELLED, "cancel_arrived_first"
                return await self._end(*ended, status, reason, campaign, profile_id), state
            if due > now:
                pending = Pending(
                    campaign,
                    trigger.message_id,
                    trigger.trigger_id,
                    to_millis(at),
                    to_millis(due),
                    encode_request(request),
                )
                TRIGGERS.labels(STAGE, HELD).inc()
                return HELD, hold(remember_request(state, campaign, at), pending)
        result = await self._emit(request, policy, profile, now)
        if result == REQUESTED:
            state = remember_request(state, campaign, at)
        return result, state

    async def _cancel(self, state: ProfileState, trigger: Trigger, profile_id: str) -> ProfileState:
        state, cancelled = cancel_pending(
            state, trigger.trigger_id, trigger.timestamp, self.cancel_on
        )
        for pending in cancelled:
            await self.recorder.outcome(
                STAGE,
                OutcomeStatus.CANCELLED,
                pending.message_id,
                reason=f"cancelled_by:{trigger.message_id}",
                trigger_id=pending.trigger_id,
                campaign=pending.campaign,
                profile_id=profile_id,
            )
        return remember_cancel(state, trigger.trigger_id, trigger.timestamp)

    async def _repeat(
        self,
        result: str,
        source: Source,
        trigger: Trigger,
        enrichments: Enrichments,
        campaign: str | None,
        profile_id: str,
    ) -> None:
        """A redelivered record: make the same decision visible again, idempotently."""
        if result == HELD:
            return  # the hold is in the state; the timer or a cancel ends it
        skipped = result.startswith(f"{OutcomeStatus.SKIPPED.value}:")
        personal = None
        if campaign is not None and (result == REQUESTED or skipped):
            personal = self._personalise(campaign, enrichments)
        if result == REQUESTED and isinstance(personal, Personalised) and campaign is not None:
            policy = self.config.campaigns[campaign]
            profile = await self.recorder.retrying(lambda: self.store.profile(profile_id))
            if profile is not None:
                request = self._request(campaign, policy, trigger, enrichments, personal, profile)
                await self._emit(request, policy, profile, self.clock())
                return
        status, reason = parse_label(result)
        detail = personal.detail() if isinstance(personal, MissingData) else None
        await self._end(trigger, source, status, reason, campaign, profile_id, detail)

    # -- release of held requests ---------------------------------------------------------------

    async def release(self, profile_id: str) -> None:
        """Release the profile's due holds: validity and suppression are checked again."""
        before = self._load(profile_id)
        state = before
        now = self.clock()
        for pending in due_pending(state, now):
            request = decode_request(pending.request)
            policy = self.config.campaigns.get(pending.campaign)
            status: OutcomeStatus | None = None
            reason: str | None = None
            profile = await self.recorder.retrying(lambda: self.store.profile(profile_id))
            if policy is None:
                status, reason = OutcomeStatus.UNROUTED, "campaign_removed"
            elif is_expired(request.trigger_timestamp, now, policy.validity):
                status, reason = OutcomeStatus.EXPIRED, "expired_while_held"
            elif profile is None:
                status, reason = OutcomeStatus.UNMATCHED, "profile_gone"
            else:
                reason = await self._suppressed(policy, profile)
                status = OutcomeStatus.SUPPRESSED if reason else None
            if status is None and policy is not None and profile is not None:
                result = await self._emit(request, policy, profile, now, wait=True)
                if result != REQUESTED:
                    state = forget_request(state, pending.campaign, pending.trigger_at)
            else:
                assert status is not None
                await self.recorder.outcome(
                    STAGE,
                    status,
                    pending.message_id,
                    reason=reason,
                    trigger_id=pending.trigger_id,
                    campaign=pending.campaign,
                    profile_id=profile_id,
                )
                state = forget_request(state, pending.campaign, pending.trigger_at)
            state = settle(state, pending.message_id)
        if state is not before:
            self._save(profile_id, state, before)

    # -- shared ---------------------------------------------------------------------------------

    async def _suppressed(self, policy: Campaign, profile: Profile) -> str | None:
        listed = await self.recorder.retrying(lambda: self.store.suppression(profile.email))
        return suppression_reason(policy.category, profile.email_consent, listed)

    def _personalise(self, campaign: str, enrichments: Enrichments) -> Personalised | MissingData:
        """The campaign's variables from this trigger (`personalise`), fallbacks counted."""
        spec = self.personalisation[campaign]
        max_length = self.config.personalisation.max_length
        personal = personalise(enrichments, spec.declarations, spec.links, max_length)
        if isinstance(personal, Personalised):
            for variable, why in personal.fallbacks:
                FALLBACKS.labels(campaign, variable, why).inc()
                if why == "unsafe":  # debug: a visitor can send these at will
                    log.debug("campaign %s: %s refused, its default stands in", campaign, variable)
        return personal

    def _request(
        self,
        campaign: str,
        policy: Campaign,
        trigger: Trigger,
        enrichments: Enrichments,
        personal: Personalised,
        profile: Profile,
    ) -> EmailRequest:
        return build_email_request(
            campaign=campaign,
            trigger=trigger,
            enrichments=enrichments,
            profile_id=profile.profile_id,
            email=profile.email,
            first_name=profile.first_name,
            locale=profile.locale,
            personalisation=self.config.personalisation,
            variables=personal.values,
            validity=policy.validity,
        )

    async def _emit(
        self,
        request: EmailRequest,
        policy: Campaign,
        profile: Profile,
        now: datetime,
        wait: bool = False,
    ) -> str:
        """Quiet hours, then send: `request`, or the label of an `expired` outcome when the
        quiet window would end after the request's validity."""
        quiet = policy.quiet_hours
        if quiet is not None:
            zone = quiet_zone(profile.timezone, quiet.timezone)
            end = quiet_hours_end(now, quiet.start, quiet.end, zone)
            if end is not None:
                if request.expires_at is not None and end >= request.expires_at:
                    return await self.recorder.outcome(
                        STAGE,
                        OutcomeStatus.EXPIRED,
                        request.message_id,
                        reason="quiet_hours",
                        trigger_id=request.trigger_id,
                        campaign=request.campaign,
                        profile_id=request.profile_id,
                    )
                request = replace(request, not_before=end)
                TRIGGERS.labels(STAGE, "deferred").inc()
        await self.outputs.email_request(request, wait=wait)
        TRIGGERS.labels(STAGE, "requested").inc()
        return REQUESTED

    async def _end(
        self,
        trigger: Trigger,
        source: Source,
        status: OutcomeStatus,
        reason: str | None,
        campaign: str | None,
        profile_id: str | None,
        detail: Mapping[str, str] | None = None,
    ) -> str:
        return await self.recorder.outcome(
            STAGE,
            status,
            trigger.message_id,
            reason=reason,
            trigger_id=trigger.trigger_id,
            campaign=campaign,
            profile_id=profile_id,
            position=source.origin,
            detail=detail,
        )

    def _load(self, profile_id: str) -> ProfileState:
        return ProfileState.from_json(self.state.get(profile_id))

    def _save(self, profile_id: str, state: ProfileState, before: ProfileState) -> None:
        # Pruned on every write, relative to the newest trigger the state knows: the value stays
        # small and the compacted changelog keeps one record per profile.
        newest = newest_time(state)
        if newest is not None:
            state = prune(state, newest, self.retention)
        self.state[profile_id] = state.to_json()
        # The due index lists only profiles with holds, so the release timer never scans the
        # whole state table; touched only when holds exist now or existed before.
        due = next_due(state)
        if due is not None:
            if self.due.get(profile_id) != due:
                self.due[profile_id] = due
        elif before.pending and profile_id in self.due:
            del self.due[profile_id]
