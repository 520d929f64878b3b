"""Campaign policies on the real broker: a `triggerline processor` with short test windows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from confluent_kafka import Producer
from sqlalchemy import insert, update

from services.common.db.engine import make_engine
from services.common.db.tables import profiles, suppressions
from services.common.models import OutcomeStatus
from services.common.settings import DatabaseSettings
from services.common.topics import topics
from services.processor.rules.policies import quiet_hours_end
from services.simulator.catalog import (
    BROWSE_ABANDONMENT,
    CART_ABANDONMENT,
    PURCHASE,
    SEARCH_ABANDONMENT,
)
from services.simulator.population import Shopper
from tests.conftest import Consumed
from tests.integration.processor.conftest import RunningProcessor, extra_shoppers, write_routing
from tests.integration.processor.records import (
    as_outcomes,
    as_requests,
    outcomes_for,
    produce,
    requests_for,
)
from tests.integration.processor.triggers import Built, adobe_envelope, build

pytestmark = pytest.mark.kafka

RECEIPT = "7c4f2e9a-1b3d-4e5f-9a8b-0c1d2e3f4a5b"  # a transactional trigger of the test file only
DELAY = timedelta(seconds=4)
ROUTES = {
    CART_ABANDONMENT.trigger_id: "tl_capped",
    BROWSE_ABANDONMENT.trigger_id: "tl_delayed",
    SEARCH_ABANDONMENT.trigger_id: "tl_quiet",
    RECEIPT: "tl_receipt",
    PURCHASE.trigger_id: "",
}
TOPICS_OF = [topics().emails(c).name for c in ("tl_capped", "tl_delayed", "tl_quiet", "tl_receipt")]


def campaigns(quiet: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "tl_capped": {
            "dedup_window": "0s",
            "validity": "1h",
            "frequency_cap": {"count": 2, "window": "1h"},
        },
        "tl_delayed": {
            "dedup_window": "0s",
            "validity": "1h",
            "delay": f"{DELAY.total_seconds():g}s",
            "cancel_on": [PURCHASE.trigger_id],
        },
        "tl_quiet": {"dedup_window": "0s", "validity": "1d", "quiet_hours": quiet},
        "tl_receipt": {
            "dedup_window": "0s",
            "category": "transactional",
            "frequency_cap": {"count": 1, "window": "1h"},
        },
    }


def start(
    factory: Callable[..., RunningProcessor], tmp_path: Path, quiet: dict[str, Any] | None = None
) -> RunningProcessor:
    routing = write_routing(tmp_path / "routing.json", ROUTES, campaigns(quiet))
    return factory(
        {
            "TRIGGERLINE_PIPELINE_CONFIG": str(routing),
            "TRIGGERLINE_PROCESSOR_RELEASE_INTERVAL": "200ms",
        }
    )


def trigger(
    who: Shopper, trigger_id: str, at: datetime | None = None, message_id: str | None = None
) -> Built:
    ms = None if at is None else int(at.timestamp() * 1000)
    return build(
        adobe_envelope(
            mcid=who.mcid,
            trigger_id=trigger_id,
            trigger_ms=ms,
            message_id=message_id or str(uuid.uuid4()),
        )
    )


def send(producer: Producer, *built: Built) -> set[str]:
    produce(producer, *((b.key, b.value) for b in built))
    return {b.message_id for b in built}


def execute(database_url: str, *statements: Any) -> None:
    engine = make_engine(DatabaseSettings.model_validate({"url": database_url}))
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)
    engine.dispose()


def results(
    consume_until: Callable[..., Consumed], ids: set[str], requests: int, outcomes: int
) -> tuple[dict[str, Any], dict[str, tuple[OutcomeStatus, str | None]]]:
    """Requests and outcomes of these message ids, reading a little past the counts."""
    got = as_requests(
        consume_until(TOPICS_OF, requests, deadline=40, match=requests_for(ids), settle=1)
    )
    ended = as_outcomes(
        consume_until(
            [topics().outcomes.name], outcomes, deadline=40, match=outcomes_for(ids), settle=1
        )
    )
    return {r.message_id: r for r in got}, {o.message_id: (o.status, o.reason) for o in ended}


def test_validity_consent_and_suppression_list(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    database_url: str,
    tmp_path: Path,
) -> None:
    fresh, no_consent, unsubscribed = shoppers
    execute(
        database_url,
        update(profiles)
        .where(profiles.c.profile_id == no_consent.profile_id)
        .values(email_consent=False),
        insert(suppressions).values(
            email=unsubscribed.email.lower(),
            reason="unsubscribed",
            source="test",
            created_at=datetime.now(UTC),
        ),
    )
    running = start(processor_factory, tmp_path)
    now = datetime.now(UTC)
    stale = trigger(fresh, CART_ABANDONMENT.trigger_id, now - timedelta(hours=2))
    backlog_edge = trigger(fresh, CART_ABANDONMENT.trigger_id, now - timedelta(minutes=50))
    refused = trigger(no_consent, CART_ABANDONMENT.trigger_id)
    receipt = trigger(no_consent, RECEIPT)  # transactional: no marketing consent needed
    listed = trigger(unsubscribed, CART_ABANDONMENT.trigger_id)  # marketing: suppressed
    still_receipts = trigger(unsubscribed, RECEIPT)  # an unsubscribe leaves receipts alone
    ids = send(producer, stale, backlog_edge, refused, receipt, listed, still_receipts)

    requests, outcomes = results(consume_until, ids, 3, 3)
    emailed = {backlog_edge.message_id, receipt.message_id, still_receipts.message_id}
    assert set(requests) == emailed, running.log_tail()
    assert outcomes == {
        stale.message_id: (OutcomeStatus.EXPIRED, "stale_trigger"),
        refused.message_id: (OutcomeStatus.SUPPRESSED, "no_consent"),
        listed.message_id: (OutcomeStatus.SUPPRESSED, "unsubscribed"),
    }


def test_frequency_cap_with_transactional_bypass(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    tmp_path: Path,
) -> None:
    running = start(processor_factory, tmp_path)
    who = shoppers[0]
    now = datetime.now(UTC)
    receipts = [trigger(who, RECEIPT, now - timedelta(seconds=30 - i)) for i in range(2)]
    carts = [
        trigger(who, CART_ABANDONMENT.trigger_id, now - timedelta(seconds=20 - i)) for i in range(3)
    ]
    ids = send(producer, *receipts, *carts)

    requests, outcomes = results(consume_until, ids, 4, 1)
    # receipts are neither capped (cap 1, two sent) nor counted towards the marketing cap
    expected = {r.message_id for r in receipts} | {carts[0].message_id, carts[1].message_id}
    assert set(requests) == expected, running.log_tail()
    assert outcomes == {carts[2].message_id: (OutcomeStatus.SUPPRESSED, "frequency_capped")}


def test_cancel_window_holds_cancels_and_releases(
    processor_factory: Callable[..., RunningProcessor],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    database_url: str,
    unique: str,
    tmp_path: Path,
) -> None:
    """Cancel inside the window: no mail; no cancel: one mail after the delay; a cancel that
    arrives first still cancels; a cancel after `due` does not."""
    inside, untouched, early, late = extra_shoppers(database_url, f"c{unique}", 4)
    running = start(processor_factory, tmp_path)
    now = datetime.now(UTC)
    second = timedelta(seconds=1)
    held_1 = trigger(inside, BROWSE_ABANDONMENT.trigger_id, now)
    cancel_1 = trigger(inside, PURCHASE.trigger_id, now + second)
    held_2 = trigger(untouched, BROWSE_ABANDONMENT.trigger_id, now)
    cancel_3 = trigger(early, PURCHASE.trigger_id, now)
    held_3 = trigger(early, BROWSE_ABANDONMENT.trigger_id, now - second)
    held_4 = trigger(late, BROWSE_ABANDONMENT.trigger_id, now - 3 * second)
    cancel_4 = trigger(late, PURCHASE.trigger_id, now + 2 * second)  # after due (now + 1 s)
    ids = send(producer, held_1, cancel_1, held_2, cancel_3, held_3, held_4, cancel_4)

    requests, outcomes = results(consume_until, ids, 2, 5)
    assert set(requests) == {held_2.message_id, held_4.message_id}, running.log_tail()
    released = requests[held_2.message_id]
    assert released.campaign == "tl_delayed" and released.email == untouched.email
    assert time.time() >= (now + DELAY).timestamp()  # not before its due time
    assert outcomes == {
        held_1.message_id: (OutcomeStatus.CANCELLED, f"cancelled_by:{cancel_1.message_id}"),
        cancel_1.message_id: (OutcomeStatus.UNROUTED, "cancel_signal"),
        cancel_3.message_id: (OutcomeStatus.UNROUTED, "cancel_signal"),
        held_3.message_id: (OutcomeStatus.CANCELLED, "cancel_arrived_first"),
        cancel_4.message_id: (OutcomeStatus.UNROUTED, "cancel_signal"),
    }


def test_quiet_hours_defer_to_the_window_end_in_the_profile_zone(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    database_url: str,
    tmp_path: Path,
) -> None:
    """Tokyo is quiet now (the window is set around its local time); UTC, the campaign's zone
    and the fallback for a profile without one, is nine hours away and not quiet."""
    tokyo, no_zone = shoppers[0], shoppers[1]
    execute(
        database_url,
        update(profiles)
        .where(profiles.c.profile_id == tokyo.profile_id)
        .values(timezone="Asia/Tokyo"),
        update(profiles).where(profiles.c.profile_id == no_zone.profile_id).values(timezone=None),
    )
    zone = ZoneInfo("Asia/Tokyo")
    local = datetime.now(zone)
    start_at = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end_at = (local + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    quiet = {"start": start_at.isoformat(), "end": end_at.isoformat(), "timezone": "UTC"}
    running = start(processor_factory, tmp_path, quiet)
    deferred = trigger(tokyo, SEARCH_ABANDONMENT.trigger_id)
    direct = trigger(no_zone, SEARCH_ABANDONMENT.trigger_id)
    ids = send(producer, deferred, direct)

    requests, outcomes = results(consume_until, ids, 2, 0)
    assert set(requests) == ids and outcomes == {}, running.log_tail()
    expected = quiet_hours_end(datetime.now(UTC), start_at, end_at, zone)
    assert expected is not None
    assert requests[deferred.message_id].not_before == expected
    assert requests[direct.message_id].not_before is None
