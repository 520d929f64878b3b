"""Table definitions (SQLAlchemy Core); Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

profiles = Table(
    "profiles",
    metadata,
    Column("profile_id", String(64), primary_key=True),
    Column("email", String(320), nullable=False),
    Column("first_name", String(200)),
    Column("locale", String(35)),
    Column("timezone", String(64)),
    Column("email_consent", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# One row per identifier that leads to a profile: the visitor id (mcid), a declared shopper id
# read from an Analytics eVar (declared), or an email address (email).
identities = Table(
    "identities",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("value", String(320), primary_key=True),
    Column(
        "profile_id",
        String(64),
        ForeignKey("profiles.profile_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email", String(320), primary_key=True),
    Column("reason", String(32), nullable=False),  # unsubscribed | hard_bounce | complaint | manual
    Column("source", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The mailer's idempotency claims: one row per email request, claimed before any SMTP traffic.
deliveries = Table(
    "deliveries",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("campaign", String(100), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed | ignored | expired
    Column("claimed_by", String(200)),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("smtp_message_id", String(300)),
    Column("error", Text),
)
