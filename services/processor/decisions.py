"""Stage 2's applier: reads a profile's state, has `rules.decide` or `rules.release` decide,
fetches the profile when a rule asks for it (`Lookup`), then performs the decision."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from services.common.enrichments import Enrichments
from services.common.models import EmailRequest
from services.processor.metrics import FALLBACKS, TRIGGERS
from services.processor.outputs import Source
from services.processor.recorder import Recorder
from services.processor.rules.cancel import next_due
from services.processor.rules.decide import decide
from services.processor.rules.decision import HELD, Cancel, Decision, Emit, Hold, Lookup
from services.processor.rules.profile import Profile, ProfileView
from services.processor.rules.release import release_due
from services.processor.rules.rulebook import Rulebook
from services.processor.rules.state import ProfileState, pruned
from services.processor.rules.trigger import ResolvedTrigger, Trigger

log = logging.getLogger(__name__)

STAGE = "decide"


class ProfileLookup(Protocol):
    """The profile store as stage 2 reads it (`ProfileStore`)."""

    def at_hand(self, profile_id: str) -> ProfileView | None: ...

    async def profile(self, profile_id: str) -> Profile | None: ...

    async def suppression(self, email: str) -> str | None: ...


class RequestOutputs(Protocol):
    """The topics stage 2 writes besides outcomes (`Outputs`)."""

    async def email_request(self, request: EmailRequest, wait: bool = False) -> None: ...

    async def unmatched(self, source: Source, reason: str) -> None: ...


Table = MutableMapping[str, Any]  # a faust table, or a dict in tests


class Decisions:
    """Reads a profile's state, has the rules decide, performs the decision."""

    def __init__(
        self,
        book: Rulebook,
        state: Table,
        due: Table,
        outputs: RequestOutputs,
        store: ProfileLookup,
        recorder: Recorder,
        retention: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.book = book
        self.state = state  # profile id -> ProfileState JSON
        self.due = due  # profile id -> earliest due time (epoch ms) of its held requests
        self.outputs = outputs
        self.store = store
        self.recorder = recorder
        self.retention = retention
        self.clock = clock

    async def decide(self, source: Source, trigger: Trigger, enrichments: Enrichments) -> None:
        """One trigger from the repartition topic, keyed by its profile id."""
        profile_id = (source.key or b"").decode()
        resolved = ResolvedTrigger(trigger, enrichments, profile_id, source.origin)
        campaign = self.book.route(trigger.trigger_id)
        before, now = self._load(profile_id), self.clock()
        at_hand = self.store.at_hand(profile_id)
        decision = decide(resolved, at_hand, before, campaign, now, self.book)
        if isinstance(decision, Lookup):
            fetched = await self._look_up(profile_id)
            decision = decide(resolved, fetched, before, campaign, now, self.book)
        await self._apply(decision, profile_id, before, source)

    async def release(self, profile_id: str) -> None:
        """A release tick: the profile's due holds are sent or end with their outcome."""
        before, now = self._load(profile_id), self.clock()
        at_hand = self.store.at_hand(profile_id)
        decision = release_due(profile_id, before, at_hand, now, self.book)
        if isinstance(decision, Lookup):
            fetched = await self._look_up(profile_id)
            decision = release_due(profile_id, before, fetched, now, self.book)
        await self._apply(decision, profile_id, before, None)

    async def _look_up(self, profile_id: str) -> ProfileView:
        """The profile and its suppression entry, waiting out database outages."""
        profile = await self.recorder.retrying(lambda: self.store.profile(profile_id))
        if profile is None:
            return ProfileView(None)
        suppressed_as = await self.recorder.retrying(lambda: self.store.suppression(profile.email))
        return ProfileView(profile, suppressed_as)

    async def _apply(
        self,
        decision: Decision | Lookup,
        profile_id: str,
        before: ProfileState,
        source: Source | None,
    ) -> None:
        assert isinstance(decision, Decision), "a rule asked twice for the profile"
        for campaign, variable, why in decision.fallbacks:
            FALLBACKS.labels(campaign, variable, why).inc()
            if why == "unsafe":  # debug: a visitor can send these at will
                log.debug("campaign %s: %s refused, its default stands in", campaign, variable)
        for action in decision.actions:
            if isinstance(action, Emit):
                if action.deferred:
                    TRIGGERS.labels(STAGE, "deferred").inc()
                await self.outputs.email_request(action.request, wait=action.wait)
                TRIGGERS.labels(STAGE, "requested").inc()
            elif isinstance(action, Hold):
                TRIGGERS.labels(STAGE, HELD).inc()
            else:
                end = action.end if isinstance(action, Cancel) else action
                if end.unmatched and source is not None:
                    await self.outputs.unmatched(source, end.reason or "")
                await self.recorder.record(STAGE, end)
        if decision.state is not None:
            self._save(profile_id, decision.state, before)

    def _load(self, profile_id: str) -> ProfileState:
        return ProfileState.from_json(self.state.get(profile_id))

    def _save(self, profile_id: str, state: ProfileState, before: ProfileState) -> None:
        # Pruned on every write: the value stays small and the compacted changelog keeps one
        # record per profile.
        state = pruned(state, self.retention)
        self.state[profile_id] = state.to_json()
        # The due index lists only profiles with holds, so the release timer never scans the
        # whole state table; touched only when holds exist now or existed before.
        due = next_due(state)
        if due is not None:
            if self.due.get(profile_id) != due:
                self.due[profile_id] = due
        elif before.pending and profile_id in self.due:
            del self.due[profile_id]
