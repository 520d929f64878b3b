"""Personalisation on the real broker and SMTP sink: a `triggerline processor` worker feeding a
mailer that renders the shipped templates, with triggers shaped like Adobe's.

Missing optional data still makes a good email, a missing required variable ends the trigger
`skipped:missing_data`, hostile links and header text never reach the shopper, and a
future-dated trigger is neither mailed nor allowed to disturb the profile's history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from confluent_kafka import Producer
from sqlalchemy import update

from services.common.db.tables import profiles
from services.common.models import OutcomeStatus
from services.common.topics import topics
from services.simulator.catalog import BROWSE_ABANDONMENT, CART_ABANDONMENT, SEARCH_ABANDONMENT
from services.simulator.population import Shopper
from services.simulator.sink_mail import ReceivedMail
from tests.conftest import Consumed
from tests.integration.processor.conftest import RunningProcessor, extra_shoppers
from tests.integration.processor.records import as_outcomes, outcomes_for, produce
from tests.integration.processor.test_policies import execute
from tests.integration.processor.triggers import Built, adobe_envelope, build
from tests.support.mailer_world import Scenario

pytestmark = pytest.mark.kafka

ATTACKER = "attacker@evil.test"
SHOP_LINKS = {"link_hosts": ["shop.example"]}


def routing(world: Scenario) -> dict[str, str]:
    """This test's campaigns (named after the scenario's, so its mailer reads them), written to
    the routing file both services load; returns trigger kind -> campaign."""
    c = world.campaign
    campaigns: dict[str, dict[str, Any]] = {
        f"{c}_cart": {
            "template": "cart_abandonment",
            "dedup_window": "1h",
            "validity": "1h",
            "default_link": "https://shop.example/cart",
            **SHOP_LINKS,
        },
        f"{c}_search": {
            "template": "search_abandonment",
            "dedup_window": "0s",
            "validity": "1h",
            "variables": {"searchTerms": {"from": ["eVar7"], "required": True}},
            **SHOP_LINKS,
        },
        f"{c}_browse": {"template": "browse_abandonment", "dedup_window": "0s", **SHOP_LINKS},
    }
    for campaign in campaigns.values():
        campaign["sender"] = "Test Shop <shop@triggerline.invalid>"
    document = {
        "topics": [
            {
                "name": "triggers",
                "consumer": "triggerline_test",
                "triggers": [
                    {"name": CART_ABANDONMENT.trigger_id, "jsConnector": f"{c}_cart"},
                    {"name": SEARCH_ABANDONMENT.trigger_id, "jsConnector": f"{c}_search"},
                    {"name": BROWSE_ABANDONMENT.trigger_id, "jsConnector": f"{c}_browse"},
                ],
            }
        ],
        "campaigns": campaigns,
        "personalisation": {
            "product_dimensions": ["products", "eVar5"],
            "variables": {
                "cartUrl": {"from": ["pageURL"], "type": "url"},
                "pageUrl": {"from": ["pageURL"], "type": "url"},
                "searchTerms": {"from": ["eVar7"], "default": ""},
            },
        },
    }
    world.pipeline_file.write_text(json.dumps(document, indent=2))
    return {"cart": f"{c}_cart", "search": f"{c}_search", "browse": f"{c}_browse"}


def start_both(
    world: Scenario, factory: Callable[..., RunningProcessor]
) -> tuple[RunningProcessor, dict[str, str]]:
    campaigns = routing(world)
    running = factory({"TRIGGERLINE_PIPELINE_CONFIG": str(world.pipeline_file)})
    world.start_mailer()
    return running, campaigns


def trigger(
    who: Shopper,
    kind: Any,
    *,
    pages: tuple[str, ...] = (),
    products: tuple[str, ...] = (),
    terms: tuple[str, ...] | None = None,
    at: datetime | None = None,
) -> Built:
    return build(
        adobe_envelope(
            mcid=who.mcid,
            trigger_id=kind.trigger_id,
            page_urls=pages,
            products=products,
            trigger_ms=None if at is None else int(at.timestamp() * 1000),
            extra_dimensions=None if terms is None else {"eVar7": ["", *terms]},
        )
    )


def everything(mail: ReceivedMail) -> str:
    """The raw message and its decoded subject, recipients and bodies: a quoted-printable soft
    break or an encoded word must not hide a leak from the assertion."""
    parsed = mail.parsed()
    parts = [mail.content.decode("ascii", errors="replace"), str(parsed["Subject"])]
    parts += [str(parsed["To"]), " ".join(mail.rcpt_tos)]
    for kind in ("plain", "html"):
        body = parsed.get_body((kind,))
        assert isinstance(body, EmailMessage)
        parts.append(body.get_content())
    return "\n".join(parts)


def body(mail: ReceivedMail, kind: str) -> str:
    part = mail.parsed().get_body((kind,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def mails_by_recipient(world: Scenario, count: int) -> dict[str, ReceivedMail]:
    mails = world.sink.wait_for(count, timeout=90)
    mails = world.sink.wait_for(count + 1, timeout=2)  # anything extra would arrive by now
    by_recipient: dict[str, ReceivedMail] = {}
    for mail in mails:
        assert len(mail.rcpt_tos) == 1, mail.rcpt_tos  # never a smuggled second recipient
        assert mail.rcpt_tos[0] not in by_recipient, f"two emails for {mail.rcpt_tos[0]}"
        by_recipient[mail.rcpt_tos[0]] = mail
    return by_recipient


def test_missing_data_degrades_or_skips_and_hostile_values_never_reach_the_shopper(
    scenario: Scenario,
    processor_factory: Callable[..., RunningProcessor],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    database_url: str,
    unique: str,
) -> None:
    people = extra_shoppers(database_url, f"m{unique}", 8)
    full, bare, js_link, foreign, terms, no_terms, crlf_terms, crlf_name = people
    execute(
        database_url,
        update(profiles)
        .where(profiles.c.profile_id == crlf_name.profile_id)
        .values(first_name=f"Ann\r\nBcc: {ATTACKER}"),
    )
    running, campaigns = start_both(scenario, processor_factory)
    cart, search, browse = CART_ABANDONMENT, SEARCH_ABANDONMENT, BROWSE_ABANDONMENT
    sent = {
        full: trigger(
            full,
            cart,
            pages=("https://shop.example/cart?id=7&utm=mail",),
            products=(";Blue Kettle;1;39.90",),
        ),
        bare: trigger(bare, cart),  # no products, no page: Adobe sends only what it was told
        js_link: trigger(js_link, cart, pages=("javascript:alert(document.cookie)//",)),
        foreign: trigger(foreign, cart, pages=("https://evil.test/login?shop=1",)),
        terms: trigger(terms, search, terms=("tent",)),
        crlf_terms: trigger(crlf_terms, search, terms=(f"boots\r\nBcc: {ATTACKER}",)),
        crlf_name: trigger(crlf_name, browse),
    }
    skipped = trigger(no_terms, search, products=(";Tent;1;99",))
    produce(producer, *((b.key, b.value) for b in [*sent.values(), skipped]))

    ended = as_outcomes(
        consume_until(
            [topics().outcomes.name], 1, deadline=60, match=outcomes_for({skipped.message_id})
        )
    )
    assert [(o.status, o.reason, o.campaign) for o in ended] == [
        (OutcomeStatus.SKIPPED, "missing_data", campaigns["search"])
    ], running.log_tail()
    assert ended[0].detail["variable"] == "searchTerms" and ended[0].detail["why"] == "absent"
    assert ended[0].label == "skipped:missing_data"

    mails = mails_by_recipient(scenario, len(sent))
    assert set(mails) == {who.email for who in sent}, running.log_tail()
    assert no_terms.email not in mails

    kept = mails[full.email]
    assert "Blue Kettle" in str(kept.parsed()["Subject"])
    assert "https://shop.example/cart?id=7&utm=mail" in body(kept, "plain")  # query string kept
    assert 'href="https://shop.example/cart?id=7&amp;utm=mail"' in body(kept, "html")

    fallback = mails[bare.email]
    assert "a few things you liked" in body(fallback, "plain")
    assert "Return to your cart: https://shop.example/cart" in body(fallback, "plain")

    for attacked, hostile in ((js_link, "javascript"), (foreign, "evil.test")):
        mail = mails[attacked.email]
        assert hostile not in everything(mail).lower()
        assert 'href="https://shop.example/cart"' in body(mail, "html")  # the default link

    assert str(mails[terms.email].parsed()["Subject"]).endswith('we found more for "tent"')

    for attacked in (crlf_terms, crlf_name):
        mail = mails[attacked.email]
        parsed = mail.parsed()
        assert "Bcc" not in parsed and ATTACKER not in everything(mail), mail.content[:600]
        assert [name for name in parsed if name.lower() in ("to", "cc", "bcc")] == ["To"]
    assert str(mails[crlf_terms.email].parsed()["Subject"]).endswith('for "boots"')
    assert str(mails[crlf_name.email].parsed()["To"]) == f"Ann <{crlf_name.email}>"


def test_a_future_dated_trigger_is_not_mailed_and_leaves_the_history_intact(
    scenario: Scenario,
    processor_factory: Callable[..., RunningProcessor],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    database_url: str,
    unique: str,
) -> None:
    """Before the fix a year-9999 trigger was mailed, and remembered as the campaign's last
    request: the window measured from it let the next real trigger through, and pruning
    relative to it dropped the rest of the profile's history."""
    shopper, drifting = extra_shoppers(database_url, f"f{unique}", 2)
    running, _ = start_both(scenario, processor_factory)
    now = datetime.now(UTC)
    cart = CART_ABANDONMENT
    first = trigger(shopper, cart, at=now - timedelta(seconds=30))
    far = trigger(shopper, cart, at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
    hour = trigger(shopper, cart, at=now + timedelta(hours=1))
    again = trigger(shopper, cart, at=now - timedelta(seconds=10))  # within the 1h dedup window
    skewed = trigger(drifting, cart, at=now + timedelta(minutes=2))  # clock drift: accepted
    ordered = (first, far, hour, again, skewed)  # one visitor's triggers keep their order
    produce(producer, *((b.key, b.value) for b in ordered))

    ids = {far.message_id, hour.message_id, again.message_id}
    ended = as_outcomes(
        consume_until([topics().outcomes.name], 3, deadline=60, match=outcomes_for(ids), settle=1)
    )
    assert {o.message_id: (o.status, o.reason) for o in ended} == {
        far.message_id: (OutcomeStatus.INVALID, "future_timestamp"),
        hour.message_id: (OutcomeStatus.INVALID, "future_timestamp"),
        again.message_id: (OutcomeStatus.DUPLICATE, "dedup_window"),
    }, running.log_tail()
    assert len(ended) == 3
    mails = mails_by_recipient(scenario, 2)
    assert set(mails) == {shopper.email, drifting.email}, running.log_tail()
    sent_for = {o.message_id for o in _sent_outcomes(consume_until, ordered)}
    assert sent_for == {first.message_id, skewed.message_id}
    metrics = running.get("/metrics")[1].decode()
    counted = 'triggerline_processor_outcomes_total{reason="future_timestamp",status="invalid"} 2.0'
    assert counted in metrics.splitlines()


def _sent_outcomes(consume_until: Callable[..., Consumed], built: tuple[Built, ...]) -> list[Any]:
    ids = {b.message_id for b in built}
    outcomes = as_outcomes(
        consume_until([topics().outcomes.name], 5, deadline=30, match=outcomes_for(ids), settle=1)
    )
    return [o for o in outcomes if o.status is OutcomeStatus.SENT]
