"""A mailer test's world: an in-process SMTP sink, a unique campaign, a mailer in a thread
(fixture `scenario`, registered for every test by tests/conftest.py).

Every test gets its own campaign (`t<unique>`), so its topic `emails.t<unique>` and its
consumer group are its own on the shared broker; outcomes and dead letters are read from the
shared topics starting at their end when the test began, and filtered by the test's keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from pydantic import SecretStr

from services.common.health import Probes
from services.common.kafka import ensure_topics, high_watermark, make_admin
from services.common.models import EmailRequest, Outcome
from services.common.serde import email_request_serde, outcome_serde
from services.common.settings import (
    REPO_ROOT,
    DatabaseSettings,
    KafkaSettings,
    LogSettings,
    PipelineConfigSettings,
    load,
)
from services.common.token_settings import TokenSettings
from services.common.topics import topics
from services.mailer.main import Mailer
from services.mailer.settings import MailerConfig, MailerSettings
from services.simulator.smtp_sink import SmtpSink

TEMPLATES = REPO_ROOT / "config" / "templates"
# Production-shaped recipient token settings: a real key, an https link, a real bounce domain.
TOKENS = load(
    TokenSettings,
    {
        "key": SecretStr("mailer-integration-tests-key-" + "k" * 32),
        "key_id": 3,
        "unsubscribe_url": "https://mail.example.com/unsubscribe",
        "bounce_domain": "bounces.example.com",
    },
)


class TopicTail:
    """Reads one topic from where it ended when the tail was made: only this test's records."""

    def __init__(self, bootstrap: str, topic: str, unique: str) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"test-tail-{unique}-{topic}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        metadata = self._consumer.list_topics(topic, timeout=10)
        partitions = []
        for number in metadata.topics[topic].partitions:
            high = high_watermark(self._consumer, topic, number)
            partitions.append(TopicPartition(topic, number, high))
        self._consumer.assign(partitions)
        self.seen: list[Message] = []

    def read(
        self,
        match: Callable[[Message], bool],
        count: int,
        deadline: float = 60.0,
        settle: float = 0.0,
    ) -> list[Message]:
        """Matching records until `count` arrived (then `settle` more seconds for extras)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end and sum(map(match, self.seen)) < count:
            self._poll()
        settle_end = time.monotonic() + settle
        while time.monotonic() < settle_end:
            self._poll()
        return [m for m in self.seen if match(m)]

    def _poll(self) -> None:
        message = self._consumer.poll(0.2)
        if message is not None and message.error() is None:
            self.seen.append(message)

    def close(self) -> None:
        self._consumer.close()


def decode_outcome(message: Message) -> Outcome:
    return Outcome.from_record(outcome_serde().decode(message.value()))


def outcome_for(keys: set[str]) -> Callable[[Message], bool]:
    return lambda m: decode_outcome(m).idempotency_key in keys


@dataclass
class Scenario:
    """One test's world: campaign, topic, sink, database, and the tails of shared topics."""

    campaign: str
    topic: str
    sink: SmtpSink
    db_url: str
    pipeline_file: Path
    templates_dir: Path
    kafka: KafkaSettings
    producer: Producer
    outcomes: TopicTail
    dlq: TopicTail
    unique: str
    tmp_path: Path
    tokens: TokenSettings = TOKENS
    mailers: list[tuple[threading.Thread, threading.Event, Mailer]] = field(default_factory=list)

    def request(self, n: int, **overrides: Any) -> EmailRequest:
        values: dict[str, Any] = {
            "idempotency_key": f"{self.unique}-{n}",
            "campaign": self.campaign,
            "trigger_id": "3e8a2ba7-fccc-49bb-bdac-33ee33cf02bf",
            "message_id": f"msg-{self.unique}-{n}",
            "trigger_timestamp": datetime.now(UTC),
            "profile_id": f"p-{self.unique}-{n}",
            "email": f"shopper{n}.{self.unique}@example.com",
            "first_name": f"Shopper {n}",
            "products": (f"Red Shoes {n}", "Blue Hat"),
            "variables": {"cartUrl": f"https://shop.example/cart/{n}"},
        }
        values.update(overrides)
        return EmailRequest(**values)

    def produce(self, requests: Sequence[EmailRequest], topic: str | None = None) -> None:
        for request in requests:
            self.producer.produce(
                topic or self.topic,
                key=request.profile_id.encode(),
                value=email_request_serde().encode(request.to_record()),
            )
        assert self.producer.flush(10) == 0

    def write_pipeline(
        self, campaigns: dict[str, str], category: str | Mapping[str, str] = "marketing"
    ) -> None:
        """Campaign name -> template folder, in a routing file of this test's own; `category`
        for all campaigns, or per campaign name (marketing where not named)."""
        lines = ["topics:", "  - {name: triggers, consumer: test}", "campaigns:"]
        for name, template in campaigns.items():
            kind = category if isinstance(category, str) else category.get(name, "marketing")
            lines.append(
                f"  {name}: {{template: {template}, category: {kind}, validity: 1d, "
                'sender: "Test Shop <shop@triggerline.invalid>"}'
            )
        self.pipeline_file.write_text("\n".join(lines) + "\n")

    def config(self, **mailer: Any) -> MailerConfig:
        values: dict[str, Any] = {
            "smtp_port": self.sink.port,
            "smtp_pool_size": 4,
            "group_id": f"test-mailer-{self.unique}",
            "campaign_pattern": f"{self.campaign}[a-z0-9_-]*",
            "retry_delays": (timedelta(seconds=1), timedelta(seconds=2)),
            "claim_timeout": timedelta(seconds=3),
            "topic_refresh": timedelta(seconds=1),
            "poll_timeout": timedelta(milliseconds=200),
            "health_port": 0,
        }
        values.update(mailer)
        return MailerConfig(
            mailer=load(MailerSettings, values),
            kafka=self.kafka,
            database=load(DatabaseSettings, {"url": SecretStr(self.db_url)}),
            pipeline=load(
                PipelineConfigSettings,
                {"config": self.pipeline_file, "templates_dir": self.templates_dir},
            ),
            tokens=self.tokens,
            log=load(LogSettings),
        )

    def token_environment(self) -> dict[str, str]:
        """`tokens` as the variables a mailer process reads."""
        return {
            "TRIGGERLINE_TOKENS_KEY": self.tokens.key.get_secret_value(),
            "TRIGGERLINE_TOKENS_KEY_ID": str(self.tokens.key_id),
            "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL": self.tokens.unsubscribe_url,
            "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN": self.tokens.bounce_domain,
        }

    def start_mailer(self, **mailer: Any) -> Mailer:
        built = Mailer.build(self.config(**mailer), Probes())
        stop = threading.Event()
        thread = threading.Thread(target=built.run, args=(stop,), name="test-mailer")
        thread.start()
        self.mailers.append((thread, stop, built))
        return built

    def stop_mailers(self) -> None:
        for _, stop, _ in self.mailers:
            stop.set()
        for thread, _, _ in self.mailers:
            thread.join(30)
            assert not thread.is_alive(), "the mailer did not stop within 30s"
        self.mailers.clear()

    def create_topic(self, campaign: str) -> str:
        spec = replace(topics().emails(campaign), partitions=3)
        ensure_topics(make_admin(self.kafka), [spec])
        return spec.name


@pytest.fixture
def scenario(
    kafka_settings: KafkaSettings, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> Iterator[Scenario]:
    campaign = f"t{unique}"
    admin = make_admin(kafka_settings)
    ensure_topics(admin, [topics().outcomes, topics().emails_dlq, *topics().email_retries()])
    sink = SmtpSink(maildir=tmp_path / "mail").start()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    world = Scenario(
        campaign=campaign,
        topic="",
        sink=sink,
        db_url=f"sqlite:///{tmp_path / 'triggerline.db'}",
        pipeline_file=tmp_path / "pipeline.yaml",
        templates_dir=TEMPLATES,
        kafka=kafka_settings,
        producer=producer,
        outcomes=TopicTail(kafka_bootstrap, topics().outcomes.name, unique),
        dlq=TopicTail(kafka_bootstrap, topics().emails_dlq.name, unique),
        unique=unique,
        tmp_path=tmp_path,
    )
    world.topic = world.create_topic(campaign)
    world.write_pipeline({campaign: "cart_abandonment"})
    try:
        yield world
    finally:
        world.stop_mailers()
        world.outcomes.close()
        world.dlq.close()
        producer.flush(10)
        sink.stop()
