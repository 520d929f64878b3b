"""Run-wide fixtures: the real local broker, unique topics and groups, bounded consumption.

Integration, end-to-end and chaos tests talk to a real Apache Kafka broker (the one `make test`
starts, or the one named by TRIGGERLINE_TEST_BOOTSTRAP). An unreachable broker fails the test
and names the command to run: nothing here skips its subject.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import pytest
from confluent_kafka import Consumer, Message, Producer
from confluent_kafka.admin import AdminClient

from services.common.kafka import ensure_topics
from services.common.settings import KafkaSettings
from services.common.topics import TopicSpec

# Fixtures shared by several test packages, kept as plain modules rather than imported conftests.
pytest_plugins = [
    "tests.support.databases",
    "tests.support.feedback_service",
    "tests.support.mailer_world",
]

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = os.environ.get("TRIGGERLINE_TEST_BOOTSTRAP", DEFAULT_BOOTSTRAP)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.list_topics(timeout=10)
    except Exception as exc:  # the broker is the subject: fail, never skip
        pytest.fail(
            f"no Kafka broker answers at {bootstrap} ({exc}); run `make kafka-up` "
            "or set TRIGGERLINE_TEST_BOOTSTRAP",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def unique() -> str:
    """A short unique token for names that must not collide between tests or runs."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def topic_factory(kafka_bootstrap: str, unique: str) -> Callable[..., str]:
    """Create a topic with a unique name; returns the name."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    counter = iter(range(1000))

    def create(prefix: str = "test", partitions: int = 3, cleanup_policy: str = "delete") -> str:
        name = f"{prefix}.{unique}.{next(counter)}"
        spec = TopicSpec(name, partitions, None, cleanup_policy=cleanup_policy)  # type: ignore[arg-type]
        ensure_topics(admin, [spec])
        return name

    return create


@pytest.fixture
def group_id(unique: str) -> str:
    return f"test-group-{unique}"


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[Producer]:
    p = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    yield p
    p.flush(10)


@dataclass
class Consumed:
    messages: list[Message]

    def values(self) -> list[bytes]:
        # The stub allows None (a tombstone); the topics read here never carry one.
        return [cast(bytes, m.value()) for m in self.messages]


@pytest.fixture
def consume_until(kafka_bootstrap: str, unique: str) -> Iterator[Callable[..., Consumed]]:
    """Read topics from the beginning until `count` matching messages arrive or the deadline.

    Returns what arrived, so a failing assertion shows it. Reads `read_committed`, as every
    Triggerline reader does.
    """
    consumers: list[Consumer] = []

    def consume(
        topics: list[str],
        count: int,
        deadline: float = 60.0,
        match: Callable[[Message], bool] = lambda m: True,
        settle: float = 0.0,
        distinct: Callable[[Message], object] | None = None,
    ) -> Consumed:
        """`count` matching messages, or `count` distinct `distinct(message)` values when
        redelivery may repeat some (at-least-once)."""
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"test-reader-{unique}-{len(consumers)}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        consumers.append(consumer)
        consumer.subscribe(topics)
        found: list[Message] = []
        end = time.monotonic() + deadline
        seen: set[object] = set()

        def reached() -> bool:
            return (len(seen) if distinct else len(found)) >= count

        while time.monotonic() < end and not reached():
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            if match(message):
                found.append(message)
                if distinct is not None:
                    seen.add(distinct(message))
        # optionally keep reading a little to catch extras (duplicates) beyond the count
        settle_end = time.monotonic() + settle
        while time.monotonic() < settle_end:
            message = consumer.poll(0.2)
            if message is not None and not message.error() and match(message):
                found.append(message)
        return Consumed(found)

    yield consume
    for consumer in consumers:
        consumer.close()
