"""The feedback stores on SQLite and PostgreSQL (the `engine` fixture): events, suppressions,
outbox, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from services.common.db.tables import suppressions
from services.common.message_refs import MessageRefStore, message_ref
from services.common.models import Outcome, OutcomeStatus
from services.common.suppression import SuppressionChange
from services.feedback.dead_letters import DeadLetter, DeadLetterStore
from services.feedback.rules.events import EventKind
from services.feedback.store import FeedbackStore, NewEvent, Recorded, SoftBounceRule

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def _event(ref: str, kind: EventKind, suppress: str | None, email: str = "Maria@X.org") -> NewEvent:
    outcome = Outcome(OutcomeStatus.BOUNCED, f"m-{ref}", "feedback", reason="x", profile_id="P-1")
    return NewEvent(ref, kind, email, outcome, suppress, "test")


def _reason(engine: Engine, email: str) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(
            select(suppressions.c.reason).where(suppressions.c.email == email)
        ).scalar_one_or_none()
    return None if value is None else str(value)


def test_an_event_is_recorded_once_and_widens_an_unsubscribe(engine: Engine) -> None:
    store = FeedbackStore(engine)
    first = store.record(_event("r1", EventKind.UNSUBSCRIBE, "unsubscribed"), NOW)
    again = store.record(_event("r1", EventKind.UNSUBSCRIBE, "unsubscribed"), NOW)
    widened = store.record(_event("r2", EventKind.COMPLAINT, "complaint"), NOW)
    narrower = store.record(_event("r3", EventKind.UNSUBSCRIBE, "unsubscribed"), NOW)

    assert (first.recorded, first.suppression) == (Recorded.NEW, SuppressionChange.INSERT)
    assert again.recorded is Recorded.REPLAY and again.suppression is None
    assert widened.suppression is SuppressionChange.WIDEN
    assert narrower.suppression is SuppressionChange.KEEP
    assert _reason(engine, "maria@x.org") == "complaint"
    assert store.suppression_reason(" MARIA@x.org ") == "complaint"


def test_a_suppression_written_by_another_service_is_respected(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(suppressions).values(
                email="maria@x.org", reason="manual", source="import", created_at=NOW
            )
        )
    result = FeedbackStore(engine).record(_event("r1", EventKind.COMPLAINT, "complaint"), NOW)
    assert result.suppression is SuppressionChange.KEEP
    assert _reason(engine, "maria@x.org") == "manual"


def test_soft_bounces_within_the_window_reach_the_limit(engine: Engine) -> None:
    store = FeedbackStore(engine)
    rule = SoftBounceRule(since=NOW - timedelta(days=7), limit=2)
    old = store.record(_event("r0", EventKind.SOFT_BOUNCE, None), NOW - timedelta(days=8), rule)
    one = store.record(_event("r1", EventKind.SOFT_BOUNCE, None), NOW, rule)
    assert old.outcome.detail["softBounces"] == "1" and one.outcome.detail["softBounces"] == "1"
    assert _reason(engine, "maria@x.org") is None
    two = store.record(_event("r2", EventKind.SOFT_BOUNCE, None), NOW, rule)
    assert two.outcome.detail["softBounces"] == "2"
    assert two.outcome.detail["suppression"] == "hard_bounce:insert"
    assert _reason(engine, "maria@x.org") == "hard_bounce"


def test_the_outbox_and_pruning(engine: Engine) -> None:
    store = FeedbackStore(engine)
    store.record(_event("r1", EventKind.HARD_BOUNCE, "hard_bounce"), NOW - timedelta(days=100))
    store.record(_event("r2", EventKind.HARD_BOUNCE, "hard_bounce"), NOW)
    waiting = store.unpublished(before=NOW - timedelta(minutes=1))
    assert [key for key, _ in waiting] == [("r1", "hard_bounce")]
    assert waiting[0][1].message_id == "m-r1" and waiting[0][1].at.tzinfo is not None
    assert store.prune(NOW - timedelta(days=90)) == 0  # never an unpublished one
    store.mark_published([("r1", "hard_bounce")], NOW)
    later = NOW + timedelta(seconds=1)
    assert [key for key, _ in store.unpublished(before=later)] == [("r2", "hard_bounce")]
    assert store.prune(NOW - timedelta(days=90)) == 1


def test_refs_and_dead_letters_are_pruned_after_their_time(engine: Engine) -> None:
    refs = MessageRefStore(engine)
    rows = [
        message_ref(
            idempotency_key=f"k{i}",
            campaign="c",
            category="marketing",
            profile_id="P-1",
            email="maria@x.org",
            message_id=f"m{i}",
            now=NOW - timedelta(days=age),
            ttl=timedelta(days=60),
        )
        for i, age in enumerate((90, 10))
    ]
    refs.record_many(rows)
    assert refs.find(rows[1].ref) == rows[1]
    assert refs.prune(NOW) == 1
    assert refs.find(rows[0].ref) is None and refs.find(rows[1].ref) is not None

    letters = DeadLetterStore(engine)
    letters.keep(DeadLetter(NOW - timedelta(days=40), "not_a_report", "", None, ["a@b.c"], b"x"))
    letters.keep(DeadLetter(NOW, "not_a_report", "", "m@x.org", ["a@b.c"], b"y" * 300_000))
    assert letters.prune(NOW - timedelta(days=30)) == 1
