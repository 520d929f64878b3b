"""A store on a PostgreSQL database whose schema is not there yet (the migration Job still
running) fails transiently, so the message waits instead of being dead-lettered, and works as
soon as the schema is there; a statement that is simply wrong still fails as a bug."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from services.common.db.engine import upgrade
from services.common.db.outages import database_outage
from services.common.errors import TransientFailure
from services.common.message_refs import MessageRefStore, message_ref
from services.mailer.suppressions import SuppressionStore
from tests.support.databases import migrated_postgres

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_missing_schema_is_an_outage_until_the_migration_ran() -> None:
    ref = message_ref(
        idempotency_key="k" * 64,
        campaign="cart_abandonment",
        category="marketing",
        profile_id="p-1",
        email="ann@example.com",
        message_id="m-1",
        now=NOW,
        ttl=timedelta(days=1),
    )
    with migrated_postgres("test_outage", migrate=False) as engine:
        refs, suppressions = MessageRefStore(engine), SuppressionStore(engine)
        with pytest.raises(TransientFailure, match="no schema yet"):
            refs.record_many([ref])
        with pytest.raises(TransientFailure, match="no schema yet"):
            suppressions.reasons(["ann@example.com"])

        upgrade(engine)

        refs.record_many([ref])
        assert refs.find(ref.ref) == ref
        assert suppressions.reasons(["ann@example.com"]) == {}


def test_a_wrong_statement_is_not_an_outage() -> None:
    with migrated_postgres("test_outage") as engine, engine.connect() as conn:
        wrong = text("SELECT no_such_column FROM suppressions")
        with pytest.raises(ProgrammingError), database_outage("test"):
            conn.execute(wrong)
