"""Alembic environment: runs migrations on the engine handed over by `engine.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from services.common.db.tables import metadata

engine: Engine = context.config.attributes["connection_engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
