"""Idempotency claims and suppressions on SQLite and PostgreSQL (the `engine` fixture): claim
once, take over stale claims, settle, never twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, select

from services.common.db.tables import deliveries
from services.mailer.claims import ClaimState, ClaimStore, DeliveryStatus
from services.mailer.suppressions import SuppressionStore
from tests.unit.mailer.helpers import NOW, request

TIMEOUT = timedelta(minutes=5)


def run_together(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    """Run `target` once per argument tuple, each on its own thread, and wait for all."""
    threads = [threading.Thread(target=target, args=a) for a in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_first_claim_wins_and_a_live_holder_blocks_others(engine: Engine) -> None:
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    first = a.claim(request(), NOW)
    assert first.state is ClaimState.CLAIMED and first.attempts == 1
    second = b.claim(request(), NOW + timedelta(seconds=10))
    assert second.state is ClaimState.BUSY
    assert second.held_until == NOW + TIMEOUT


def test_a_stale_claim_is_taken_over_after_the_timeout(engine: Engine) -> None:
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    a.claim(request(), NOW)
    assert b.claim(request(), NOW + TIMEOUT).state is ClaimState.BUSY  # the end is exclusive
    taken = b.claim(request(), NOW + TIMEOUT + timedelta(seconds=1))
    assert taken.state is ClaimState.CLAIMED and taken.attempts == 2
    with engine.connect() as conn:
        assert conn.execute(select(deliveries.c.claimed_by)).scalar_one() == "b"


def test_a_released_claim_can_be_claimed_again_at_once(engine: Engine) -> None:
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    a.claim(request(), NOW)
    a.release("key-1", "451 try later", NOW)
    again = b.claim(request(), NOW + timedelta(seconds=1))
    assert again.state is ClaimState.CLAIMED and again.attempts == 2


def test_a_holder_silent_while_handing_over_leaves_unknown_never_a_second_send(
    engine: Engine,
) -> None:
    """A crash between the final dot and the `sent` row: the message may have arrived, so the
    next instance settles the key `unknown` instead of taking it over to send it again."""
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    a.claim(request(), NOW)
    assert a.hand_many(["key-1"], NOW) == {"key-1"}
    assert b.claim(request(), NOW + timedelta(seconds=10)).state is ClaimState.BUSY
    later = b.claim(request(), NOW + TIMEOUT + timedelta(seconds=1))
    assert (later.state, later.status) == (ClaimState.SETTLED, DeliveryStatus.UNKNOWN)
    assert later.abandoned  # the instance that settles it reports it first, dead-lettered
    with engine.connect() as conn:
        row = conn.execute(select(deliveries.c.status, deliveries.c.claimed_by)).one()
    assert (row.status, row.claimed_by) == ("unknown", "a")
    again = a.claim(request(), NOW + 2 * TIMEOUT)  # a redelivery: reported, not again first
    assert (again.status, again.abandoned) == (DeliveryStatus.UNKNOWN, False)


def test_only_the_holder_hands_over_and_a_release_makes_the_key_claimable(engine: Engine) -> None:
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    a.claim_many([request(), request(idempotency_key="key-2")], NOW)
    assert b.hand_many(["key-1", "key-2"], NOW) == set()  # taken over meanwhile: not sent
    assert a.hand_many(["key-1", "key-2"], NOW) == {"key-1", "key-2"}
    a.release("key-1", "451 after the data: nothing was taken", NOW)
    again = b.claim(request(), NOW + timedelta(seconds=1))
    assert again.state is ClaimState.CLAIMED and again.attempts == 2
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.idempotency_key, deliveries.c.status))
        statuses = {row.idempotency_key: row.status for row in rows}
    assert statuses == {"key-1": "pending", "key-2": "handing"}


def test_release_by_a_non_holder_does_nothing(engine: Engine) -> None:
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    a.claim(request(), NOW)
    b.release("key-1", "not mine", NOW)
    assert b.claim(request(), NOW).state is ClaimState.BUSY


def test_a_sent_key_is_never_claimed_again(engine: Engine) -> None:
    store = ClaimStore(engine, "a", TIMEOUT)
    store.claim(request(), NOW)
    store.mark_sent("key-1", "<abc@x>", NOW)
    later = ClaimStore(engine, "b", TIMEOUT).claim(request(), NOW + timedelta(days=1))
    assert later.state is ClaimState.SETTLED
    assert later.status is DeliveryStatus.SENT and later.smtp_message_id == "<abc@x>"


def test_settling_a_new_key_records_it_and_a_sent_key_keeps_its_status(engine: Engine) -> None:
    store = ClaimStore(engine, "a", TIMEOUT)
    expired = store.settle_unclaimed(request(), DeliveryStatus.EXPIRED, NOW, "late")
    assert expired.status is DeliveryStatus.EXPIRED
    assert store.claim(request(), NOW).state is ClaimState.SETTLED

    store.claim(request(idempotency_key="key-2"), NOW)
    store.mark_sent("key-2", "<id@x>", NOW)
    replay = store.settle_unclaimed(
        request(idempotency_key="key-2"), DeliveryStatus.EXPIRED, NOW, "late"
    )
    assert replay.status is DeliveryStatus.SENT and replay.smtp_message_id == "<id@x>"


def test_settling_a_pending_key_settles_it(engine: Engine) -> None:
    store = ClaimStore(engine, "a", TIMEOUT)
    store.claim(request(), NOW)
    store.release("key-1", "deferred", NOW)
    settled = store.settle_unclaimed(request(), DeliveryStatus.IGNORED, NOW, "hard_bounce")
    assert settled.status is DeliveryStatus.IGNORED
    with engine.connect() as conn:
        assert conn.execute(select(deliveries.c.status)).scalar_one() == "ignored"


def test_racing_instances_claim_each_key_exactly_once(engine: Engine) -> None:
    keys = [f"race-{n}" for n in range(60)]
    wins: dict[str, list[str]] = {key: [] for key in keys}
    lock = threading.Lock()

    def worker(name: str) -> None:
        store = ClaimStore(engine, name, TIMEOUT)
        for key in keys:
            if store.claim(request(idempotency_key=key), NOW).state is ClaimState.CLAIMED:
                with lock:
                    wins[key].append(name)

    run_together(worker, [(f"w{n}",) for n in range(4)])
    assert {key: len(names) for key, names in wins.items()} == dict.fromkeys(keys, 1)


def test_suppressions_ignore_case_and_keep_the_first_reason(engine: Engine) -> None:
    store = SuppressionStore(engine)
    assert store.reason("ann@example.com") is None
    assert store.add("Ann@Example.com", "hard_bounce", "mailer", NOW)
    assert not store.add("ann@example.com", "unsubscribed", "web", NOW)
    assert store.reason(" ANN@example.com") == "hard_bounce"


def test_a_hard_bounce_widens_an_unsubscribe_and_nothing_narrows_it(engine: Engine) -> None:
    """An unsubscribe stops marketing mail only; the mailer's hard bounce must stop all."""
    store = SuppressionStore(engine)
    assert store.add("bob@example.com", "unsubscribed", "feedback", NOW)
    assert store.add("BOB@example.com", "hard_bounce", "mailer: 550 5.1.1", NOW)
    assert store.reason("bob@example.com") == "hard_bounce"
    assert not store.add("bob@example.com", "unsubscribed", "feedback", NOW)
    assert not store.add("bob@example.com", "hard_bounce", "mailer: again", NOW)
    assert store.reason("bob@example.com") == "hard_bounce"


def test_a_batch_claim_decides_every_key_on_its_own_row(engine: Engine) -> None:
    a, b = ClaimStore(engine, "a", TIMEOUT), ClaimStore(engine, "b", TIMEOUT)
    b.claim(request(idempotency_key="held"), NOW)
    a.claim(request(idempotency_key="stale"), NOW - TIMEOUT - timedelta(seconds=1))
    a.claim(request(idempotency_key="done"), NOW)
    a.mark_sent("done", "<done@example.com>", NOW)
    keys = ["new", "held", "stale", "done", "new"]
    claims = a.claim_many([request(idempotency_key=key) for key in keys], NOW)
    assert [c.state for c in claims] == [
        ClaimState.CLAIMED,
        ClaimState.BUSY,  # a live holder
        ClaimState.CLAIMED,  # its own claim, stale: taken over with one more attempt
        ClaimState.SETTLED,
        ClaimState.BUSY,  # the key twice in one poll is claimed once
    ]
    assert claims[2].attempts == 2
    assert claims[3].status is DeliveryStatus.SENT
    assert claims[3].smtp_message_id == "<done@example.com>"
    assert claims[1].held_until == NOW + TIMEOUT
    with engine.connect() as conn:
        query = select(deliveries.c.idempotency_key, deliveries.c.claimed_by)
        rows = dict(conn.execute(query).tuples().all())
    assert rows == {"new": "a", "held": "b", "stale": "a", "done": "a"}


def test_racing_batch_claims_claim_each_key_exactly_once(engine: Engine) -> None:
    keys = [f"batch-{n}" for n in range(200)]
    wins: dict[str, list[str]] = {key: [] for key in keys}
    lock = threading.Lock()

    def worker(name: str) -> None:
        store = ClaimStore(engine, name, TIMEOUT)
        for at in range(0, len(keys), 50):
            chunk = [request(idempotency_key=key) for key in keys[at : at + 50]]
            for item, claim in zip(chunk, store.claim_many(chunk, NOW), strict=True):
                if claim.state is ClaimState.CLAIMED:
                    with lock:
                        wins[item.idempotency_key].append(name)

    run_together(worker, [(f"w{n}",) for n in range(4)])
    assert {key: len(names) for key, names in wins.items()} == dict.fromkeys(keys, 1)


def test_sent_marks_from_many_threads_each_reach_their_row(engine: Engine) -> None:
    store = ClaimStore(engine, "a", TIMEOUT)
    keys = [f"sent-{n}" for n in range(80)]
    store.claim_many([request(idempotency_key=key) for key in keys], NOW)

    def worker(part: list[str]) -> None:
        for key in part:
            store.mark_sent(key, f"<{key}@example.com>", NOW)

    run_together(worker, [(keys[n::8],) for n in range(8)])
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.idempotency_key, deliveries.c.status, deliveries.c.smtp_message_id)
        ).all()
    assert {row.idempotency_key: (row.status, row.smtp_message_id) for row in rows} == {
        key: ("sent", f"<{key}@example.com>") for key in keys
    }


def test_suppressions_are_read_for_a_whole_batch_at_once(engine: Engine) -> None:
    store = SuppressionStore(engine)
    store.add("ann@example.com", "hard_bounce", "mailer", NOW)
    store.add("bob@example.com", "unsubscribed", "web", NOW)
    addresses = [" ANN@example.com", "carl@example.com", "bob@example.com", "Ann@example.com"]
    assert store.reasons(addresses) == {
        " ANN@example.com": "hard_bounce",
        "bob@example.com": "unsubscribed",
        "Ann@example.com": "hard_bounce",
    }
    assert store.reasons([]) == {}
