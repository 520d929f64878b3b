"""A running `triggerline feedback` on loopback, against the real broker and PostgreSQL
(fixtures `feedback_database` and `feedback`, registered for every test by tests/conftest.py).

One service process and one database per test module; each test works on addresses and refs
of its own, and reads the outcomes of its own profiles.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient
from sqlalchemy import Engine, select

from services.common.db.tables import feedback_events, suppressions
from services.common.message_refs import MessageRef, MessageRefStore, message_ref
from services.common.models import Outcome, OutcomeStatus
from services.common.serde import outcome_serde
from services.common.unsubscribe_token import (
    KeyRing,
    SigningKey,
    TokenPurpose,
    bounce_address,
    sign,
)
from services.ops.processes import ServiceProcess, wait_http
from tests.conftest import free_port
from tests.support.databases import migrated_postgres

BOUNCE_DOMAIN = "bounces.example.com"
PUBLIC_URL = "https://mail.example.com/unsubscribe"
SOFT_BOUNCE_LIMIT = 2


@dataclass(frozen=True)
class Sent:
    """One email as the mailer would have recorded it, with the links it would carry."""

    ref: MessageRef
    unsubscribe_token: str
    return_path: str


@dataclass
class FeedbackUnderTest:
    process: ServiceProcess
    engine: Engine
    keys: KeyRing
    legacy_key: bytes
    http: str
    health: str
    smtp_port: int
    outcomes_topic: str
    bootstrap: str

    def unsubscribe_url(self, token: str) -> str:
        return f"{self.http}/unsubscribe?token={token}"

    def sent(
        self,
        email: str,
        *,
        profile_id: str | None = None,
        category: str = "marketing",
        ttl: timedelta = timedelta(days=30),
    ) -> Sent:
        """Record a sent email in `message_refs`, as the mailer does before SMTP."""
        now = datetime.now(UTC)
        row = message_ref(
            idempotency_key=uuid.uuid4().hex * 2,
            campaign="cart_abandonment",
            category=category,
            profile_id=profile_id or f"P-{uuid.uuid4().hex[:12]}",
            email=email,
            message_id=str(uuid.uuid4()),
            now=now,
            ttl=ttl,
        )
        MessageRefStore(self.engine).record_many([row])
        return Sent(
            row,
            sign(row.ref, TokenPurpose.UNSUBSCRIBE, now + ttl, self.keys),
            bounce_address(sign(row.ref, TokenPurpose.BOUNCE, now + ttl, self.keys), BOUNCE_DOMAIN),
        )

    def suppression(self, email: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(suppressions).where(suppressions.c.email == email.lower())
            ).first()
        return None if row is None else dict(row._mapping)

    def assert_hard_bounced(self, email: str, sent: Sent) -> None:
        """A 5.1.1 DSN for `sent` suppressed `email` and published one `bounced:hard` outcome."""
        row = self.suppression(email)
        assert row is not None and row["reason"] == "hard_bounce"
        ((_, outcome),) = self.outcomes_for(sent.ref.profile_id, 1)
        assert outcome.status is OutcomeStatus.BOUNCED and outcome.label == "bounced:hard"
        assert outcome.detail["status"] == "5.1.1"
        assert outcome.message_id == sent.ref.message_id

    def events(self, ref: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(feedback_events).where(feedback_events.c.ref == ref))
            return [dict(r._mapping) for r in rows]

    def outcomes_for(
        self, profile_id: str, count: int, deadline: float = 30.0, settle: float = 0.0
    ) -> list[tuple[Message, Outcome]]:
        """The outcomes keyed by this profile, read from the beginning of the topic."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-feedback-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        consumer.subscribe([self.outcomes_topic])
        found: list[tuple[Message, Outcome]] = []
        serde = outcome_serde()
        end = time.monotonic() + deadline
        settle_end: float | None = None
        try:
            while time.monotonic() < (settle_end or end):
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                if message.key() != profile_id.encode():
                    continue
                found.append((message, Outcome.from_record(serde.decode(message.value()))))
                if len(found) >= count and settle_end is None:
                    settle_end = time.monotonic() + settle
        finally:
            consumer.close()
        return found


@pytest.fixture(scope="module")
def feedback_database() -> Iterator[Engine]:
    """A migrated PostgreSQL database for this module alone, dropped afterwards."""
    with migrated_postgres("test_feedback") as engine:
        yield engine


@pytest.fixture(scope="module")
def feedback_environment() -> dict[str, str]:
    """Variables a test module adds to the service's (override it there: STARTTLS, say)."""
    return {}


@pytest.fixture(scope="module")
def feedback(
    feedback_database: Engine,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    feedback_environment: dict[str, str],
) -> Iterator[FeedbackUnderTest]:
    """`triggerline feedback` as a child process, with production-like settings (no
    development flag: real keys, an https URL, a real-looking bounce domain)."""
    prefix = f"fb-{uuid.uuid4().hex[:8]}."
    current, previous, legacy = (secrets.token_urlsafe(40) for _ in range(3))
    ports = {name: free_port() for name in ("http", "health", "smtp")}
    env = {
        "TRIGGERLINE_DB_URL": feedback_database.url.render_as_string(hide_password=False),
        "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TRIGGERLINE_TOPICS_PREFIX": prefix,
        "TRIGGERLINE_TOKENS_KEY": current,
        "TRIGGERLINE_TOKENS_KEY_ID": "7",
        "TRIGGERLINE_TOKENS_PREVIOUS_KEY": previous,
        "TRIGGERLINE_TOKENS_PREVIOUS_KEY_ID": "6",
        "TRIGGERLINE_TOKENS_UNSUBSCRIBE_URL": PUBLIC_URL,
        "TRIGGERLINE_TOKENS_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "TRIGGERLINE_FEEDBACK_PORT": str(ports["http"]),
        "TRIGGERLINE_FEEDBACK_HEALTH_PORT": str(ports["health"]),
        "TRIGGERLINE_FEEDBACK_SMTP_PORT": str(ports["smtp"]),
        "TRIGGERLINE_FEEDBACK_SOFT_BOUNCE_LIMIT": str(SOFT_BOUNCE_LIMIT),
        "TRIGGERLINE_FEEDBACK_LEGACY_KEY": legacy,
        "TRIGGERLINE_FEEDBACK_MAINTENANCE_INTERVAL": "1s",
        "TRIGGERLINE_FEEDBACK_MIGRATE_ON_START": "false",
        **feedback_environment,
    }
    logs: Path = tmp_path_factory.mktemp("feedback") / "feedback.log"
    process = ServiceProcess("feedback", [], env, logs).start()
    health = f"http://127.0.0.1:{ports['health']}"
    try:
        wait_http(f"{health}/readyz", 60, process)
        yield FeedbackUnderTest(
            process=process,
            engine=feedback_database,
            keys=KeyRing(SigningKey(7, current.encode()), SigningKey(6, previous.encode())),
            legacy_key=legacy.encode(),
            http=f"http://127.0.0.1:{ports['http']}",
            health=health,
            smtp_port=ports["smtp"],
            outcomes_topic=f"{prefix}outcomes",
            bootstrap=kafka_bootstrap,
        )
    finally:
        code = process.stop()
        log_tail = process.tail(40)
        AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics(
            [f"{prefix}outcomes"], operation_timeout=30
        )
        assert code == 0, f"feedback exited with {code}:\n{log_tail}"
