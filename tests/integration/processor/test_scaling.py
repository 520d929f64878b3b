"""Restarts and scaling on the real broker: dedup survives a kill, workers come and go.

Counts are exact end to end: every trigger gets one result, either email requests that all carry
one idempotency key (at-least-once may repeat a request; the mailer's claim makes that one
email) or one outcome (repeated copies identical), never both.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from services.common.models import EmailRequest, Outcome, OutcomeStatus
from services.common.serde import email_request_serde, outcome_serde
from services.common.topics import topics
from services.simulator.catalog import CART_ABANDONMENT
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
from tests.integration.processor.triggers import Built, adobe_envelope, build, random_mcid

pytestmark = pytest.mark.kafka

CAMPAIGN = "tl_scale"
EMAILS = topics().emails(CAMPAIGN).name


def scale_env(tmp_path: Path) -> dict[str, str]:
    routing = write_routing(
        tmp_path / "routing.json",
        {CART_ABANDONMENT.trigger_id: CAMPAIGN},
        {CAMPAIGN: {"dedup_window": "0s", "validity": "1h"}},
    )
    return {
        "TRIGGERLINE_PIPELINE_CONFIG": str(routing),
        "TRIGGERLINE_PROCESSOR_SESSION_TIMEOUT": "6s",
        "TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL": "0.5s",
    }


def cart(who: Shopper | None, message_id: str | None = None) -> Built:
    mcid = who.mcid if who is not None else random_mcid()
    return build(adobe_envelope(mcid=mcid, message_id=message_id or str(uuid.uuid4())))


def tally(
    requests: list[EmailRequest], outcomes: list[Outcome]
) -> tuple[dict[str, set[str]], dict[str, set[tuple[OutcomeStatus, str | None]]]]:
    keys: dict[str, set[str]] = defaultdict(set)
    for request in requests:
        keys[request.message_id].add(request.idempotency_key)
    ends: dict[str, set[tuple[OutcomeStatus, str | None]]] = defaultdict(set)
    for outcome in outcomes:
        ends[outcome.message_id].add((outcome.status, outcome.reason))
    return keys, ends


def test_dedup_survives_a_killed_and_restarted_worker(
    processor_factory: Callable[..., RunningProcessor],
    shoppers: list[Shopper],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    tmp_path: Path,
) -> None:
    env = scale_env(tmp_path)
    first = processor_factory(env, state_dir="state")
    original = cart(shoppers[0])
    produce(producer, (original.key, original.value))
    ids = {original.message_id}
    consume_until([EMAILS], 1, deadline=40, match=requests_for(ids))
    time.sleep(2)  # a sleep: commit intervals (0.5 s) pass, so the kill loses no acknowledged work
    first.kill()

    restarted = processor_factory(env, state_dir="state")  # same app id, same data dir
    produce(producer, (original.key, original.value))  # the same messageId, a new offset
    outcomes = as_outcomes(
        consume_until([topics().outcomes.name], 1, deadline=40, match=outcomes_for(ids), settle=1)
    )
    requests = as_requests(consume_until([EMAILS], 1, deadline=5, match=requests_for(ids)))
    assert [(o.status, o.reason) for o in outcomes] == [
        (OutcomeStatus.DUPLICATE, "repeat_message")
    ], restarted.log_tail()
    assert {r.idempotency_key for r in requests} == {requests[0].idempotency_key}
    assert len(requests) == 1


def test_one_two_three_workers_and_a_kill_lose_nothing_and_mail_once(
    processor_factory: Callable[..., RunningProcessor],
    producer: Producer,
    consume_until: Callable[..., Consumed],
    database_url: str,
    unique: str,
    tmp_path: Path,
) -> None:
    people = extra_shoppers(database_url, f"s{unique}", 40)
    unique_triggers = [cart(people[i % len(people)]) for i in range(360)]
    repeats = [
        cart(people[i % len(people)], t.message_id) for i, t in enumerate(unique_triggers[:20])
    ]
    strangers = [cart(None) for _ in range(20)]
    # The repeats go after their originals, strangers anywhere: 400 records in all.
    plan = unique_triggers[:180] + strangers + unique_triggers[180:] + repeats
    env = scale_env(tmp_path)

    workers = [processor_factory(env)]
    stop = threading.Event()

    def flow() -> None:  # about 20 triggers/s for 20 s, while workers join and one dies
        for built in plan:
            if stop.is_set():
                return
            producer.produce(topics().triggers_raw.name, key=built.key, value=built.value)
            producer.poll(0)
            time.sleep(0.05)  # a sleep: pacing the flow
        producer.flush(10)

    feeder = threading.Thread(target=flow, daemon=True)
    feeder.start()
    try:
        # sleeps: workers join, and one dies, at set moments of the flow
        time.sleep(3)
        workers.append(processor_factory(env))
        time.sleep(3)
        workers.append(processor_factory(env))
        time.sleep(3)
        workers[1].kill()  # mid-stream, no goodbye: its partitions move after the session
        feeder.join(60)
    finally:
        stop.set()
    assert not feeder.is_alive()

    ids = {b.message_id for b in plan}
    known = {b.message_id for b in unique_triggers}
    # at-least-once: a kill can repeat some records, so wait for distinct ids, not counts
    outcomes = as_outcomes(
        consume_until(
            [topics().outcomes.name],
            len(repeats) + len(strangers),
            deadline=60,
            match=outcomes_for(ids),
            settle=2,
            distinct=lambda m: outcome_serde().decode(m.value())["messageId"],
        )
    )
    requests = as_requests(
        consume_until(
            [EMAILS],
            len(known),
            deadline=60,
            match=requests_for(ids),
            settle=2,
            distinct=lambda m: email_request_serde().decode(m.value())["messageId"],
        )
    )
    keys, ends = tally(requests, outcomes)
    print(  # the numbers the report quotes (pytest -s)
        f"scaling: {len(plan)} triggers in, {len(requests)} requests "
        f"({len(keys)} distinct keys), {len(outcomes)} outcomes"
    )
    logs = "\n".join(w.log_tail(15) for w in workers)
    missing = known - set(keys)
    if missing:
        fate = as_outcomes(
            consume_until(
                [topics().outcomes.name], len(missing), deadline=10, match=outcomes_for(missing)
            )
        )
        ended = [(o.message_id, o.status, o.reason, o.detail) for o in fate]
        logs = f"outcomes of the missing: {ended}\n{logs}"
    assert not missing, f"{len(missing)} of {len(known)} never became a request\n{logs}"
    assert all(len(k) == 1 for k in keys.values())  # ...with one idempotency key each
    assert len({k for ks in keys.values() for k in ks}) == len(known)
    # outcomes: one per stranger (unmatched) and one per upstream repeat (duplicate), whose
    # messageId its original already turned into a request; no other trigger has an outcome
    strangers_ids = {b.message_id for b in strangers}
    repeat_ids = {b.message_id for b in repeats}
    assert ends == {
        **{m: {(OutcomeStatus.UNMATCHED, "no_profile")} for m in strangers_ids},
        **{m: {(OutcomeStatus.DUPLICATE, "repeat_message")} for m in repeat_ids},
    }, logs
