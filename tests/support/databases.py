"""Migrated databases of a test's own: the `engine` fixture, on SQLite and on PostgreSQL.

A plugin module (`pytest_plugins` in tests/conftest.py), so every test package has the fixture.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from services.common.db.engine import make_engine, upgrade
from services.common.settings import DatabaseSettings, load

POSTGRES_SERVER = os.environ.get(
    "TRIGGERLINE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:15432/triggerline"
)


@contextmanager
def migrated_postgres(prefix: str = "test", migrate: bool = True) -> Iterator[Engine]:
    """A fresh database named `<prefix>_<random>`, migrated to head (or left empty); dropped
    on exit.

    An unreachable server fails the test (never skips it) and says how to start one.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        where = make_url(POSTGRES_SERVER).render_as_string(hide_password=True)
        pytest.fail(
            f"no PostgreSQL answers at {where} ({exc.orig}); run `make postgres-up` or set "
            "TRIGGERLINE_TEST_POSTGRES_URL",
            pytrace=False,
        )
    url = make_url(POSTGRES_SERVER).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(load(DatabaseSettings, {"url": SecretStr(url)}))
    try:
        if migrate:
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database of this test's own, once per backend the stores support: SQLite (the
    local stack's) in `tmp_path`, and PostgreSQL (production's) on the server
    TRIGGERLINE_TEST_POSTGRES_URL names (unreachable: the test fails). Test ids carry `sqlite` or
    `postgresql`, so `-k sqlite` runs without a server."""
    if request.param == "postgresql":
        with migrated_postgres() as engine:
            yield engine
        return
    url = SecretStr(f"sqlite:///{tmp_path / 'triggerline.db'}")
    engine = make_engine(load(DatabaseSettings, {"url": url}))
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
