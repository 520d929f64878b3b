"""One-click unsubscribe (RFC 8058) against the running service, the database and Kafka."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import insert

from services.common.db.tables import feedback_events, profiles
from services.common.models import Outcome, OutcomeStatus
from services.common.unsubscribe_token import KeyRing, SigningKey, TokenPurpose, sign
from tests.support.deadlines import wait_until
from tests.support.feedback_service import FeedbackUnderTest

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _post(
    feedback: FeedbackUnderTest, token: str, data: dict[str, str] | None = None
) -> requests.Response:
    return requests.post(
        feedback.unsubscribe_url(token),
        data=ONE_CLICK if data is None else data,
        allow_redirects=False,
        timeout=10,
    )


def test_one_click_post_suppresses_and_publishes_the_outcome(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("Maria.Lopez")
    sent = feedback.sent(email)

    response = _post(feedback, sent.unsubscribe_token)

    assert response.status_code == 200 and "Location" not in response.headers
    assert "You are unsubscribed" in response.text
    row = feedback.suppression(email)
    assert row is not None
    assert (row["email"], row["reason"]) == (email.lower(), "unsubscribed")
    assert "one-click" in row["source"]
    ((message, outcome),) = feedback.outcomes_for(sent.ref.profile_id, 1)
    assert message.key() == sent.ref.profile_id.encode()  # where the profile's other records go
    assert outcome.status is OutcomeStatus.UNSUBSCRIBED and outcome.service == "feedback"
    assert (outcome.reason, outcome.campaign, outcome.message_id, outcome.idempotency_key) == (
        "marketing",
        "cart_abandonment",
        sent.ref.message_id,
        sent.ref.idempotency_key,
    )
    assert outcome.detail["via"] == "one-click"
    assert outcome.detail["suppression"] == "unsubscribed:insert"


def test_a_replayed_unsubscribe_is_idempotent(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("replay")
    sent = feedback.sent(email)
    first = _post(feedback, sent.unsubscribe_token)
    before = feedback.suppression(email)

    replays = [_post(feedback, sent.unsubscribe_token) for _ in range(3)]
    page = requests.get(feedback.unsubscribe_url(sent.unsubscribe_token), timeout=10)

    assert first.status_code == 200 and all(r.status_code == 200 for r in replays)
    assert feedback.suppression(email) == before
    assert len(feedback.events(sent.ref.ref)) == 1
    outcomes = feedback.outcomes_for(sent.ref.profile_id, 1, settle=3.0)
    assert [o.status for _, o in outcomes] == [OutcomeStatus.UNSUBSCRIBED]
    assert page.status_code == 200 and "already unsubscribed" in page.text
    assert "<form" not in page.text


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("a" if token[middle] != "a" else "b") + token[middle + 1 :]


@pytest.mark.parametrize(
    "kind", ["forged", "tampered", "expired", "retired_key", "bounce_token", "malformed", "none"]
)
def test_a_bad_token_changes_nothing(
    feedback: FeedbackUnderTest, address: Callable[[str], str], kind: str
) -> None:
    email = address(f"bad-{kind}")
    sent = feedback.sent(email)
    now = datetime.now(UTC)
    tokens = {
        # right key id, wrong key: what someone without the key would have to do
        "forged": sign(
            sent.ref.ref,
            TokenPurpose.UNSUBSCRIBE,
            now + timedelta(days=1),
            KeyRing(SigningKey(7, b"guessed" * 8)),
        ),
        "tampered": _tampered(sent.unsubscribe_token),
        "expired": sign(
            sent.ref.ref, TokenPurpose.UNSUBSCRIBE, now - timedelta(seconds=1), feedback.keys
        ),
        "retired_key": sign(
            sent.ref.ref,
            TokenPurpose.UNSUBSCRIBE,
            now + timedelta(days=1),
            KeyRing(SigningKey(5, b"retired" * 8)),
        ),
        "bounce_token": sign(
            sent.ref.ref, TokenPurpose.BOUNCE, now + timedelta(days=1), feedback.keys
        ),
        "malformed": "eyJwIjoiUC0xIn0",
        "none": "",
    }
    token = tokens[kind]

    posted = _post(feedback, token)
    shown = requests.get(feedback.unsubscribe_url(token), timeout=10)

    expected = 410 if kind == "expired" else 400
    assert posted.status_code == expected and shown.status_code == expected
    heading = "This link has expired" if kind == "expired" else "This link does not work"
    assert heading in posted.text and heading in shown.text
    assert "Nothing was changed" in shown.text or "nothing was changed" in shown.text
    assert feedback.suppression(email) is None
    assert feedback.events(sent.ref.ref) == []
    assert feedback.outcomes_for(sent.ref.profile_id, 1, deadline=3.0) == []


def test_the_previous_key_still_works_and_a_bare_post_does_not(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("rotated")
    sent = feedback.sent(email)
    previous = feedback.keys.previous
    assert previous is not None
    token = sign(
        sent.ref.ref,
        TokenPurpose.UNSUBSCRIBE,
        datetime.now(UTC) + timedelta(days=1),
        KeyRing(previous),
    )

    bare = _post(feedback, token, data={})
    assert bare.status_code == 400 and feedback.suppression(email) is None

    assert _post(feedback, token).status_code == 200
    assert feedback.suppression(email) is not None


def test_an_old_format_link_keeps_working(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    """Links the mailer signed before the new format: `<payload>.<mac>` naming the profile."""
    email = address("legacy")
    profile_id = f"P-legacy-{email.split('@')[0]}"
    with feedback.engine.begin() as conn:
        conn.execute(
            insert(profiles).values(
                profile_id=profile_id,
                email=email,
                email_consent=True,
                created_at=datetime.now(UTC),
            )
        )
    expires = int((datetime.now(UTC) + timedelta(days=1)).timestamp())
    payload = json.dumps(
        {"p": profile_id, "c": "marketing", "e": expires}, separators=(",", ":")
    ).encode()
    mac = hmac.digest(feedback.legacy_key, payload, "sha256")[:16]
    token = ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode() for p in (payload, mac))

    assert _post(feedback, token).status_code == 200
    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "unsubscribed"
    ((_, outcome),) = feedback.outcomes_for(profile_id, 1)
    assert outcome.status is OutcomeStatus.UNSUBSCRIBED and outcome.campaign is None


def test_health_pages_are_served_apart_from_the_public_port(feedback: FeedbackUnderTest) -> None:
    assert requests.get(f"{feedback.health}/healthz", timeout=5).status_code == 200
    metrics = requests.get(f"{feedback.health}/metrics", timeout=5).text
    assert "triggerline_feedback_events_total" in metrics
    assert requests.get(f"{feedback.http}/metrics", timeout=5).status_code == 404


def _wait_published(feedback: FeedbackUnderTest, ref: str, deadline: float = 15.0) -> bool:
    def published() -> bool:
        events = feedback.events(ref)
        return bool(events) and all(e["published_at"] is not None for e in events)

    return wait_until(
        published, deadline, every=0.2, what=f"every feedback event of {ref} to be published"
    )


def test_acknowledged_outcomes_are_marked_and_a_lost_one_is_sent_again(
    feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    sent = feedback.sent(address("outbox"))
    assert _post(feedback, sent.unsubscribe_token).status_code == 200
    assert _wait_published(feedback, sent.ref.ref)

    # A crash between the commit and Kafka's acknowledgement: the row stays unpublished.
    lost = feedback.sent(address("lost"))
    outcome = Outcome(
        OutcomeStatus.COMPLAINED,
        lost.ref.message_id,
        "feedback",
        reason="abuse",
        profile_id=lost.ref.profile_id,
        at=datetime.now(UTC) - timedelta(minutes=2),
        detail={"feedbackType": "abuse"},
    )
    with feedback.engine.begin() as conn:
        conn.execute(
            insert(feedback_events).values(
                ref=lost.ref.ref,
                kind="complaint",
                email=lost.ref.email,
                at=outcome.at,
                outcome=json.dumps({**outcome.to_record(), "at": outcome.at.isoformat()}),
                published_at=None,
            )
        )

    ((_, again),) = feedback.outcomes_for(lost.ref.profile_id, 1)
    assert again.status is OutcomeStatus.COMPLAINED and again.message_id == lost.ref.message_id
    assert _wait_published(feedback, lost.ref.ref)
