"""Stage 2's applier with its stores faked: lookups on demand, the state and the due index."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, cast

from services.common.health import Probes
from services.common.models import EmailRequest, Outcome
from services.processor.decisions import Decisions
from services.processor.outputs import Outputs, Source
from services.processor.recorder import Recorder, RetryPolicy
from services.processor.rules.profile import Profile, ProfileView
from services.processor.rules.state import ProfileState, to_millis
from services.processor.rules.trigger import Trigger
from tests.unit.processor.rulebook_fixtures import ANN, BOOK, MINUTE, SEARCHED, T0


class FakeOutputs:
    def __init__(self) -> None:
        self.requests: list[tuple[EmailRequest, bool]] = []
        self.unmatched_records: list[tuple[Source, str]] = []
        self.outcomes: list[Outcome] = []

    async def email_request(self, request: EmailRequest, wait: bool = False) -> None:
        self.requests.append((request, wait))

    async def unmatched(self, source: Source, reason: str) -> None:
        self.unmatched_records.append((source, reason))

    async def outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)


class FakeStore:
    """Nothing at hand: every profile is fetched, and the fetches are counted."""

    def __init__(self, profile: Profile | None) -> None:
        self._profile = profile
        self.fetched: list[str] = []

    def at_hand(self, profile_id: str) -> ProfileView | None:
        return None

    async def profile(self, profile_id: str) -> Profile | None:
        self.fetched.append(profile_id)
        return self._profile

    async def suppression(self, email: str) -> str | None:
        self.fetched.append(email)
        return None


class World:
    def __init__(self, profile: Profile | None = ANN) -> None:
        self.now = T0
        self.outputs = FakeOutputs()
        self.store = FakeStore(profile)
        self.state: dict[str, Any] = {}
        self.due: dict[str, Any] = {}
        outputs = cast(Outputs, self.outputs)
        recorder = Recorder(outputs, RetryPolicy(timedelta(0), timedelta(0)), Probes())
        self.decisions = Decisions(
            BOOK,
            self.state,
            self.due,
            self.outputs,
            self.store,
            recorder,
            timedelta(days=2),
            lambda: self.now,
        )

    def trigger(self, trigger_id: str, message_id: str = "m1") -> None:
        source = Source("by-profile", 0, 7, None, b"P1", b"", [("x-source", b"triggers.raw:0:5")])
        trigger = Trigger(message_id, trigger_id, "1" * 38, self.now, "{}")
        asyncio.run(self.decisions.decide(source, trigger, SEARCHED))

    def stored(self) -> ProfileState:
        return ProfileState.from_json(self.state.get("P1"))


def test_the_profile_is_fetched_once_when_a_rule_needs_it_then_the_request_goes() -> None:
    world = World()
    world.trigger("cart")
    assert world.store.fetched == ["P1", "ann@example.com"]
    ((request, wait),) = world.outputs.requests
    assert request.email == "ann@example.com" and not wait
    assert world.stored().seen["m1"].result == "request"


def test_no_lookup_for_a_trigger_that_ends_before_the_profile_matters() -> None:
    world = World()
    world.trigger("other")
    assert world.store.fetched == [] and world.state == {}
    assert [o.label for o in world.outputs.outcomes] == ["unrouted"]


def test_a_gone_profile_is_re_drivable() -> None:
    world = World(profile=None)
    world.trigger("cart")
    ((source, reason),) = world.outputs.unmatched_records
    assert reason == "profile_gone" and source.origin == "triggers.raw:0:5"
    assert world.outputs.outcomes[0].detail == {"source": "triggers.raw:0:5"}


def test_a_hold_enters_the_due_index_and_its_release_leaves_it() -> None:
    world = World()
    world.trigger("reminder")
    assert world.due == {"P1": to_millis(T0 + 30 * MINUTE)}
    assert world.outputs.requests == []
    world.now = T0 + 30 * MINUTE
    asyncio.run(world.decisions.release("P1"))
    ((request, wait),) = world.outputs.requests
    assert wait and request.campaign == "reminder"  # the broker has it before the state forgets
    assert world.due == {} and world.stored().pending == {}


def test_a_release_tick_with_nothing_due_writes_nothing() -> None:
    world = World()
    world.trigger("reminder")
    before = dict(world.state)
    world.now = T0 + MINUTE
    asyncio.run(world.decisions.release("P1"))
    assert world.state == before and world.outputs.requests == []


def test_the_state_is_pruned_as_it_is_written() -> None:
    world = World()
    world.trigger("cart", "old")
    world.now = T0 + timedelta(days=3)
    world.trigger("receipt", "new")
    assert set(world.stored().seen) == {"new"}  # two days' retention from the newest trigger
    assert world.stored().seen["new"].at == to_millis(world.now)
