"""Reading the committed pointer on a real broker while a transaction is open on its topic.

A worker killed between writing its pointer record and the end of its commit leaves that
transaction open until its next incarnation fences it (or the transaction timeout). Every
pointer committed after it is hidden from a `read_committed` reader meanwhile: read then, the
pointer of another worker is stale, and that worker writes its last envelopes again (the chaos
run of seed 1210858736 sent 66 triggers twice into `triggers.raw` that way).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from services.common.errors import TransientFailure
from services.common.kafka import ensure_topics, make_admin, make_producer
from services.common.settings import KafkaSettings
from services.common.topics import topics
from services.fetcher.pointer import load_pointers, pointer_key
from services.fetcher.rules.cursor import Cursor
from tests.support.deadlines import wait_until


@pytest.fixture
def pointer_topic(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.setenv("TRIGGERLINE_TOPICS_PREFIX", f"pointer-{unique}.")
    topics.cache_clear()
    ensure_topics(make_admin(kafka_settings), [topics().fetcher_pointers])
    yield topics().fetcher_pointers.name
    topics.cache_clear()


def transactional(kafka: KafkaSettings, transactional_id: str) -> Producer:
    producer = make_producer(kafka, client_id=transactional_id, transactional_id=transactional_id)
    producer.init_transactions(30)
    return producer


def commit_pointer(producer: Producer, topic: str, key: bytes, cursor: Cursor) -> None:
    producer.begin_transaction()
    producer.produce(topic, key=key, value=cursor.encode())
    producer.commit_transaction(30)


def test_a_pointer_committed_behind_an_open_transaction_is_read_once_it_ends(
    kafka_settings: KafkaSettings, unique: str, pointer_topic: str
) -> None:
    group = f"consumer-{unique}"
    other = transactional(kafka_settings, f"{unique}-w1")
    commit_pointer(other, pointer_topic, pointer_key(group, "triggers", 1), Cursor(10))
    zombie = transactional(kafka_settings, f"{unique}-w0")
    zombie.begin_transaction()  # killed mid-commit: its pointer is written, never committed
    zombie.produce(pointer_topic, key=pointer_key(group, "triggers", 0), value=Cursor(5).encode())
    zombie.flush(30)
    commit_pointer(other, pointer_topic, pointer_key(group, "triggers", 1), Cursor(20))

    fenced: list[Producer] = []  # the killed worker's next incarnation, a moment later
    restart = threading.Timer(
        1.0, lambda: fenced.append(transactional(kafka_settings, f"{unique}-w0"))
    )
    restart.start()
    try:
        pointers = load_pointers(kafka_settings, group, "triggers", timeout=30)
    finally:
        restart.join()
    assert fenced, "the zombie's transaction was never fenced"
    assert pointers == {1: Cursor(20)}  # not the stale 10; the zombie's 5 was aborted


def test_the_pointer_is_read_while_the_other_workers_keep_committing(
    kafka_settings: KafkaSettings, unique: str, pointer_topic: str
) -> None:
    """A worker replacing its producer reads while its siblings commit ten times a second: the
    end never stays still and partition EOF never comes, yet the read must end."""
    group = f"consumer-{unique}"
    stop = threading.Event()
    commits = [0, 0, 0]

    def sibling(index: int) -> None:
        producer = transactional(kafka_settings, f"{unique}-w{index}")
        while not stop.is_set():
            key = pointer_key(group, "triggers", index)
            commit_pointer(producer, pointer_topic, key, Cursor(commits[index] + 1))
            commits[index] += 1
            stop.wait(0.05)  # the commit interval, about: 100 ms less the commit itself

    siblings = [threading.Thread(target=sibling, args=(i,)) for i in range(3)]
    for thread in siblings:
        thread.start()
    try:
        wait_until(lambda: min(commits) >= 5, deadline=30, what="the siblings' first commits")
        pointers = load_pointers(kafka_settings, group, "triggers", timeout=20)
        settled = list(commits)
    finally:
        stop.set()
        for thread in siblings:
            thread.join()
    assert sorted(pointers) == [0, 1, 2]
    assert all(pointers[i].next >= 5 for i in range(3))  # at least what was committed before
    assert all(pointers[i].next <= settled[i] + 1 for i in range(3))


def test_a_transaction_that_never_ends_is_a_transient_failure_that_names_it(
    kafka_settings: KafkaSettings, unique: str, pointer_topic: str
) -> None:
    group = f"consumer-{unique}"
    zombie = transactional(kafka_settings, f"{unique}-w0")
    zombie.begin_transaction()
    zombie.produce(pointer_topic, key=pointer_key(group, "triggers", 0), value=Cursor(5).encode())
    zombie.flush(30)
    try:
        with pytest.raises(TransientFailure, match="has a transaction open for over 2s"):
            load_pointers(kafka_settings, group, "triggers", timeout=2)
    finally:
        zombie.abort_transaction(30)
    assert load_pointers(kafka_settings, group, "triggers", timeout=30) == {}
