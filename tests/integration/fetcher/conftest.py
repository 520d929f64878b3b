"""The fetcher as a real process, in front of an in-process simulator and auth service."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.kafka import ensure_topics, make_admin
from services.common.settings import KafkaSettings
from services.common.topics import Topics, topics_for
from tests.conftest import Consumed, free_port
from tests.integration.auth.conftest import FETCHER_SECRET, key_pair, stack
from tests.support.kafka_messages import header_of

__all__ = ["FETCHER_SECRET", "key_pair", "stack"]


@dataclass
class FetcherProcess:
    """`triggerline fetcher` in its own topic namespace; restartable, killable."""

    env: dict[str, str]
    log: Path
    topics: Topics
    status_port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "fetcher"],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


@pytest.fixture
def fetcher_factory(
    tmp_path: Path, kafka_settings: KafkaSettings, unique: str
) -> Iterator[Callable[..., FetcherProcess]]:
    started: list[FetcherProcess] = []

    def make(pipeline_url: str, auth_url: str, **settings: str) -> FetcherProcess:
        prefix = f"fetch-{unique}."
        topics = topics_for(prefix)
        ensure_topics(make_admin(kafka_settings), topics.fixed())
        port = free_port()
        env = {
            "TRIGGERLINE_KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "TRIGGERLINE_TOPICS_PREFIX": prefix,
            "TRIGGERLINE_FETCHER_PIPELINE_ENDPOINT": pipeline_url,
            "TRIGGERLINE_FETCHER_AUTH_URL": auth_url,
            "TRIGGERLINE_FETCHER_AUTH_SECRET": FETCHER_SECRET,
            "TRIGGERLINE_FETCHER_CONSUMER": f"test_{unique}",
            "TRIGGERLINE_FETCHER_RESET": "earliest",
            "TRIGGERLINE_FETCHER_MONITOR_SERVER_PORT": str(port),
            "TRIGGERLINE_FETCHER_SYNC_INTERVAL_MS": "200",
            "TRIGGERLINE_FETCHER_TRANSACTIONAL_ID_PREFIX": f"test-fetcher-{unique}",
        }
        env.update({f"TRIGGERLINE_FETCHER_{k.upper()}": v for k, v in settings.items()})
        fetcher = FetcherProcess(env, tmp_path / f"fetcher-{len(started)}.log", topics, port)
        started.append(fetcher)
        return fetcher

    yield make
    for fetcher in started:
        fetcher.stop()
    if started:  # leave the shared broker as we found it
        names = [spec.name for spec in started[0].topics.fixed()]
        make_admin(kafka_settings).delete_topics(names, operation_timeout=30)


def upstream_positions(consumed: Consumed) -> Counter[tuple[int, int]]:
    """Upstream (partition, offset) of every record: the identity exactly-once is about."""
    seen: Counter[tuple[int, int]] = Counter()
    for message in consumed.messages:
        partition = header_of(message, "upstream-partition")
        offset = header_of(message, "upstream-offset")
        assert partition is not None and offset is not None
        seen[(int(partition), int(offset))] += 1
    return seen
