"""Engines and schema upgrades, for SQLite (local) and PostgreSQL (production, CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from services.common.settings import DatabaseSettings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_engine(settings: DatabaseSettings) -> Engine:
    """An engine with bounded waits, so a slow database becomes a transient failure."""
    url = make_url(settings.url.get_secret_value())
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": settings.statement_timeout, "check_same_thread": False}
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets the processor read profiles while the mailer writes claims.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    timeout_ms = int(settings.statement_timeout * 1000)
    kwargs["pool_size"] = settings.pool_size
    kwargs["pool_timeout"] = settings.statement_timeout
    if url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": max(1, int(settings.statement_timeout)),
            "options": f"-c statement_timeout={timeout_ms}",
        }
    return create_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection_engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)
