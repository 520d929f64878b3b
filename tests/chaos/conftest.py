"""Chaos tests control the local broker and database themselves, so they need the ones
`make test` starts (or a private pair: TRIGGERLINE_KAFKA_HOME and TRIGGERLINE_KAFKA_PORT for
deploy/local/kafka.sh, TRIGGERLINE_POSTGRES_HOME and TRIGGERLINE_POSTGRES_PORT for
deploy/local/postgres.sh, with TRIGGERLINE_TEST_BOOTSTRAP and TRIGGERLINE_TEST_POSTGRES_URL
pointing at them)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.common.db.engine import make_engine, upgrade
from services.common.settings import DatabaseSettings, load
from tests.integration.fetcher.conftest import FETCHER_SECRET, fetcher_factory, key_pair, stack
from tests.support.databases import POSTGRES_SERVER

__all__ = [
    "FETCHER_SECRET",
    "chaos_database_url",
    "fetcher_factory",
    "key_pair",
    "local_broker",
    "local_database",
    "stack",
]

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"
KAFKA_SH = LOCAL / "kafka.sh"
POSTGRES_SH = LOCAL / "postgres.sh"


@pytest.fixture
def local_broker(kafka_bootstrap: str) -> Iterator[Callable[[str], None]]:
    """`local_broker("down")` / `("up")`: stop and start the broker `deploy/local/kafka.sh`
    runs (127.0.0.1:19092, or the port TRIGGERLINE_KAFKA_PORT names)."""
    if kafka_bootstrap != f"127.0.0.1:{os.environ.get('TRIGGERLINE_KAFKA_PORT', '19092')}":
        pytest.fail(
            "chaos tests restart the local broker: run them with `make test`, not against "
            f"{kafka_bootstrap}",
            pytrace=False,
        )

    def control(action: str) -> None:
        subprocess.run([str(KAFKA_SH), action], check=True, timeout=180)

    yield control
    control("up")  # whatever happened, leave the broker running for the next test


@pytest.fixture
def local_database() -> Iterator[Callable[[str], None]]:
    """`local_database("down")` / `("up")`: stop and start the PostgreSQL the tests use, which
    `deploy/local/postgres.sh` runs (port 15432, or TRIGGERLINE_POSTGRES_PORT)."""
    port = int(os.environ.get("TRIGGERLINE_POSTGRES_PORT", "15432"))
    if make_url(POSTGRES_SERVER).port != port:
        pytest.fail(
            "chaos tests stop the local PostgreSQL: run them with `make test`, or point "
            "TRIGGERLINE_TEST_POSTGRES_URL at the server deploy/local/postgres.sh runs",
            pytrace=False,
        )

    def control(action: str) -> None:
        subprocess.run([str(POSTGRES_SH), action], check=True, timeout=180)

    yield control
    control("up")  # whatever happened, leave the database running for the next test


@pytest.fixture
def chaos_database_url() -> Iterator[str]:
    """A migrated database of this test's own on the local PostgreSQL, dropped afterwards.

    Unlike the `engine` fixture's, no connection is kept across the test: the database is stopped
    and started in the middle, which would leave a pooled connection dead for the teardown.
    """
    name = f"chaos_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(load(DatabaseSettings, {"url": SecretStr(url)}))
    upgrade(engine)
    engine.dispose()
    yield url
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin(statement: str) -> None:
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()
