"""A real `triggerline processor` worker per test, on the real broker, with its own database.

Each worker has a unique app id (consumer group), repartition topic, state directory and SQLite
file. Its group starts at the current end of triggers.raw (committed before it starts), so it
handles only what its test produces even though other tests share the topic.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import insert

from services.common.db.engine import make_engine, upgrade
from services.common.db.tables import identities, profiles
from services.common.kafka import ensure_topics, high_watermark
from services.common.settings import DatabaseSettings
from services.common.topics import topics
from services.simulator.population import Shopper, shopper
from tests.conftest import free_port
from tests.integration.processor.triggers import random_mcid
from tests.support.deadlines import wait_until

REPO = Path(__file__).resolve().parents[3]
EXECUTABLE = REPO / ".venv" / "bin" / "triggerline"


@pytest.fixture
def shoppers(unique: str) -> list[Shopper]:
    """Three demo shoppers with identifiers no other test uses."""
    base = random.randrange(10_000_000)
    return [
        dataclasses.replace(
            shopper(base + i),
            profile_id=f"P-{unique}-{i}",
            mcid=random_mcid(),
            declared_id=f"D{unique.upper()}{i}",
            email=f"shopper{i}.{unique}@example.com",
        )
        for i in range(3)
    ]


def seed_database(url: str, shoppers: list[Shopper]) -> None:
    """Migrate the database at `url` and add the shoppers' profiles and identities."""
    engine = make_engine(DatabaseSettings.model_validate({"url": url}))
    upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for s in shoppers:
            connection.execute(
                insert(profiles).values(
                    profile_id=s.profile_id,
                    email=s.email,
                    first_name=s.first_name,
                    locale=s.locale,
                    timezone=s.timezone,
                    email_consent=True,
                    created_at=now,
                )
            )
            connection.execute(
                insert(identities),
                [
                    {"kind": "mcid", "value": s.mcid, "profile_id": s.profile_id},
                    {"kind": "declared", "value": s.declared_id, "profile_id": s.profile_id},
                    {"kind": "email", "value": s.email, "profile_id": s.profile_id},
                ],
            )
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path, shoppers: list[Shopper]) -> str:
    """A migrated SQLite database holding the shoppers' profiles and identities."""
    url = f"sqlite:///{tmp_path / 'profiles.db'}"
    seed_database(url, shoppers)
    return url


def start_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit the group's offsets at the topic's current end, so history is not replayed."""
    # On a fresh broker the topic may not exist yet: create it as declared first.
    spec = next(s for s in topics().fixed() if s.name == topic)
    ensure_topics(AdminClient({"bootstrap.servers": bootstrap}), [spec])
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        offsets = []
        for partition in metadata.topics[topic].partitions:
            high = high_watermark(consumer, topic, partition)
            offsets.append(TopicPartition(topic, partition, high))
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@dataclasses.dataclass
class RunningProcessor:
    app_id: str
    web_port: int
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.web_port}{path}", timeout=2
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_up(self, deadline: float = 60.0) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"processor exited with {self.process.returncode}:\n{self.log_tail()}")
            return self.get("/healthz")[0] == 200

        wait_until(
            answers,
            deadline,
            every=0.3,
            what=lambda: f"the processor's web server:\n{self.log_tail()}",
            ignoring=(OSError,),
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit, as when a node dies."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture
def processor_factory(
    kafka_bootstrap: str, unique: str, tmp_path: Path, database_url: str
) -> Iterator[Callable[..., RunningProcessor]]:
    """Start workers of one app (same group, repartition topic and database); stop them all."""
    app_id = f"test-processor-{unique}"
    started: list[RunningProcessor] = []
    start_group_at_end(kafka_bootstrap, app_id, topics().triggers_raw.name)

    def start(
        extra_env: dict[str, str] | None = None, state_dir: str | None = None
    ) -> RunningProcessor:
        """One more worker; `state_dir` reuses a state directory (a restart), else a new one."""
        index = len(started)
        port = free_port()
        env = {
            **os.environ,
            "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TRIGGERLINE_DB_URL": database_url,
            "TRIGGERLINE_PROCESSOR_APP_ID": app_id,
            "TRIGGERLINE_PROCESSOR_DATA_DIR": str(tmp_path / (state_dir or f"state-{index}")),
            "TRIGGERLINE_PROCESSOR_WEB_PORT": str(port),
            "TRIGGERLINE_PROCESSOR_REPARTITION_TOPIC": f"test.by-profile.{unique}",
            "TRIGGERLINE_PROCESSOR_COMMIT_INTERVAL": "0.5s",
            "TRIGGERLINE_PROCESSOR_STANDBY_REPLICAS": "0",
            "TRIGGERLINE_LOG_LEVEL": "INFO",
            **(extra_env or {}),
        }
        log_path = tmp_path / f"processor-{index}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(EXECUTABLE), "processor"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        running = RunningProcessor(app_id, port, log_path, process)
        started.append(running)
        running.wait_up()
        return running

    yield start
    for running in started:
        running.stop()


def extra_shoppers(database_url: str, tag: str, count: int) -> list[Shopper]:
    """More seeded shoppers for tests that need one profile per case."""
    base = random.randrange(10_000_000)
    added = [
        dataclasses.replace(
            shopper(base + i),
            profile_id=f"P-{tag}-{i}",
            mcid=random_mcid(),
            declared_id=f"D{tag.upper()}{i}",
            email=f"shopper{i}.{tag}@example.com",
        )
        for i in range(count)
    ]
    seed_database(database_url, added)
    return added


def write_routing(path: Path, routes: dict[str, str], campaigns: dict[str, Any]) -> Path:
    """A routing file (trigger id -> campaign, "" for cancel-only triggers) with campaigns."""
    document = {
        "topics": [
            {
                "name": "triggers",
                "consumer": "triggerline_test",
                "triggers": [{"name": t, "jsConnector": c} for t, c in routes.items()],
            }
        ],
        "campaigns": {name: {"template": "cart_abandonment", **c} for name, c in campaigns.items()},
    }
    path.write_text(json.dumps(document, indent=2))
    return path
