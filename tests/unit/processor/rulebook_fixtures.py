"""A routing file, profiles and states for the table-driven tests of stage 2's rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.common.enrichments import Enrichments
from services.common.models import EmailRequest
from services.common.pipeline_config import parse_pipeline_config
from services.processor.rules.decision import Action, Cancel, Decision, Emit, End, Hold, Lookup
from services.processor.rules.profile import Profile, ProfileView
from services.processor.rules.rulebook import InputLimits, Rulebook, build_rulebook
from services.processor.rules.state import ProfileState
from services.processor.rules.trigger import ResolvedTrigger, Trigger

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
ORIGIN = "triggers.raw:3:41"

CONFIG = parse_pipeline_config(
    {
        "topics": [
            {
                "name": "triggers",
                "consumer": "test",
                "triggers": [
                    {"name": "cart", "jsConnector": "cart"},
                    {"name": "receipt", "jsConnector": "receipt"},
                    {"name": "reminder", "jsConnector": "reminder"},
                    {"name": "quiet", "jsConnector": "quiet"},
                    {"name": "search", "jsConnector": "search"},
                    {"name": "purchase", "jsConnector": ""},
                ],
            }
        ],
        "campaigns": {
            "cart": {
                "template": "t",
                "dedup_window": "1h",
                "validity": "2h",
                "frequency_cap": {"count": 1, "window": "1d"},
            },
            "receipt": {
                "template": "t",
                "category": "transactional",
                "frequency_cap": {"count": 1, "window": "1d"},
            },
            "reminder": {
                "template": "t",
                "delay": "30m",
                "cancel_on": ["PURCHASE"],
                "frequency_cap": {"count": 1, "window": "1d"},
                "quiet_hours": {"start": "22:00", "end": "06:00"},
            },
            "quiet": {
                "template": "t",
                "validity": "12h",
                "quiet_hours": {"start": "22:00", "end": "06:00"},
            },
            "search": {
                "template": "t",
                "variables": {"searchTerms": {"from": ["eVar7"], "required": True}},
            },
        },
    }
)


class MemoryCodec:
    """Held requests kept in memory under a number, so the rules' tests need no Avro."""

    def __init__(self) -> None:
        self.held: dict[str, EmailRequest] = {}

    def encode(self, request: EmailRequest) -> str:
        key = f"{len(self.held)}:{request.message_id}"
        self.held[key] = request
        return key

    def decode(self, text: str) -> EmailRequest:
        return self.held[text]


CODEC = MemoryCodec()
BOOK: Rulebook = build_rulebook(CONFIG, InputLimits(), CODEC)

ANN = Profile("P1", "ann@example.com", "Ann", "en-GB", "UTC", email_consent=True)
AT_HAND = ProfileView(ANN)
NO_CONSENT = ProfileView(replace(ANN, email_consent=False))
LISTED = ProfileView(ANN, "hard_bounce")
GONE = ProfileView(None)
EMPTY = ProfileState()
SEARCHED = Enrichments(hits={"eVar7": ("red shoes",)})


def arrival(
    trigger_id: str = "cart",
    message_id: str = "m1",
    at: datetime = T0,
    enrichments: Enrichments = SEARCHED,
    profile_id: str = "P1",
    origin: str = ORIGIN,
) -> ResolvedTrigger:
    return ResolvedTrigger(
        Trigger(message_id, trigger_id, "1" * 38, at, "{}"), enrichments, profile_id, origin
    )


def named(action: Action) -> str:
    """An action as a table row names it: `emit`, `hold`, `cancel m0`, `expired:stale_trigger`."""
    if isinstance(action, Emit):
        return "emit (deferred)" if action.deferred else "emit"
    if isinstance(action, Hold):
        return "hold"
    if isinstance(action, Cancel):
        return f"cancel {action.pending.message_id}"
    assert isinstance(action, End)
    return action.label.rstrip(":")


def summary(decision: Decision | Lookup) -> tuple[str, ...]:
    if isinstance(decision, Lookup):
        return ("lookup",)
    return tuple(named(action) for action in decision.actions)
