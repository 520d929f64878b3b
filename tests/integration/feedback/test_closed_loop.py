"""The loop closed for real: the mailer sends, the recipient clicks the email's own link (or its
return path bounces), and the mailer's next request for that address ends suppressed.

The mailer runs in this process against the feedback service's PostgreSQL database and signs
with the service's keys, as both do from one Secret in a cluster; the links and return paths
are read from the messages the SMTP sink received, never built by the test.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydantic import SecretStr
from sqlalchemy import select

from services.common.db.tables import message_refs
from services.common.settings import load
from services.common.token_settings import TokenSettings
from tests.support.feedback_reports import dsn
from tests.support.feedback_service import BOUNCE_DOMAIN, PUBLIC_URL, FeedbackUnderTest
from tests.support.mailer_world import Scenario, decode_outcome, outcome_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def world(scenario: Scenario, feedback: FeedbackUnderTest) -> Scenario:
    """The test's mailer on the feedback service's database, signing with its current key."""
    scenario.db_url = feedback.engine.url.render_as_string(hide_password=False)
    current = feedback.keys.current
    scenario.tokens = load(
        TokenSettings,
        {
            "key": SecretStr(current.secret.decode()),
            "key_id": current.key_id,
            "unsubscribe_url": PUBLIC_URL,
            "bounce_domain": BOUNCE_DOMAIN,
        },
    )
    receipts = f"{scenario.campaign}receipt"
    scenario.create_topic(receipts)
    scenario.write_pipeline(
        {scenario.campaign: "cart_abandonment", receipts: "cart_abandonment"},
        category={receipts: "transactional"},
    )
    return scenario


def _send(world: Scenario, n: int, email: str, campaign: str | None = None) -> str:
    """One request through the running mailer; its outcome's label (`status[:reason]`)."""
    request = world.request(n, email=email, campaign=campaign or world.campaign)
    world.produce([request], topic=f"{world.topic}receipt" if campaign else None)
    (message,) = world.outcomes.read(outcome_for({request.idempotency_key}), 1, deadline=60)
    return decode_outcome(message).label


def test_the_emails_own_link_unsubscribes_and_stops_marketing_mail_only(
    world: Scenario, feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("clicker")
    world.start_mailer()
    assert _send(world, 1, email) == "sent"
    (mail,) = world.sink.for_recipient(email)
    link = str(mail.parsed()["List-Unsubscribe"]).strip("<>")
    assert link.startswith(f"{PUBLIC_URL}?token=")
    (token,) = parse_qs(urlsplit(link).query)["token"]
    with feedback.engine.connect() as conn:  # the row the link names was saved before sending
        (ref,) = conn.execute(select(message_refs).where(message_refs.c.email == email)).all()
    assert ref.campaign == world.campaign and ref.category == "marketing"

    clicked = requests.post(
        feedback.unsubscribe_url(token), data={"List-Unsubscribe": "One-Click"}, timeout=10
    )
    assert clicked.status_code == 200
    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "unsubscribed"

    assert _send(world, 2, email) == "suppressed:unsubscribed"
    receipt = _send(world, 3, email, campaign=f"{world.campaign}receipt")
    assert receipt == "sent"  # an unsubscribe leaves transactional mail alone
    assert len(world.sink.for_recipient(email)) == 2
    assert mail.parsed()["List-Unsubscribe"] is not None
    assert world.sink.for_recipient(email)[1].parsed()["List-Unsubscribe"] is None


def test_a_bounce_to_the_emails_return_path_stops_all_mail_to_the_address(
    world: Scenario, feedback: FeedbackUnderTest, address: Callable[[str], str]
) -> None:
    email = address("gone")
    world.start_mailer()
    assert _send(world, 1, email) == "sent"
    (mail,) = world.sink.for_recipient(email)
    return_path = mail.mail_from
    assert return_path.startswith("bounce+") and return_path.endswith(f"@{BOUNCE_DOMAIN}")
    assert email.split("@")[0] not in return_path  # no personal data in the token

    with smtplib.SMTP("127.0.0.1", feedback.smtp_port, timeout=20) as mta:
        mta.ehlo("mx.example.net")
        mta.sendmail("", [return_path], dsn(to=return_path, status="5.1.1", final_recipient=email))

    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "hard_bounce"
    assert _send(world, 2, email) == "suppressed:hard_bounce"
    receipt = _send(world, 3, email, campaign=f"{world.campaign}receipt")
    assert receipt == "suppressed:hard_bounce"  # a bounce stops transactional mail too
    assert len(world.sink.for_recipient(email)) == 1
