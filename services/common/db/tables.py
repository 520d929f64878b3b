"""Table definitions (SQLAlchemy Core); Alembic migrations in `migrations/` create them."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    # pending | handing | sent | failed | ignored | expired | unknown (services/mailer/claims.py)
    Column("status", String(16), nullable=False),
    Column("claimed_by", String(200)),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("smtp_message_id", String(300)),
    Column("error", Text),
)

# What each recipient token names (services/common/unsubscribe_token.py): one row per email the
# mailer sends, so links and return paths carry a random ref instead of personal data. Rows are
# pruned by the feedback service once every token naming them has expired.
message_refs = Table(
    "message_refs",
    metadata,
    Column("ref", String(32), primary_key=True),
    Column("idempotency_key", String(128), nullable=False),
    Column("campaign", String(100), nullable=False),
    Column("category", String(32), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("email", String(320), nullable=False),
    Column("message_id", String(300), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# What recipients sent back, one row per (sent email, kind of event), so a replayed unsubscribe
# or a DSN sent twice changes nothing. The row is also the outbox of the event's outcome:
# `published_at` stays empty until Kafka acknowledged it, and unpublished rows are sent again.
feedback_events = Table(
    "feedback_events",
    metadata,
    Column("ref", String(40), primary_key=True),
    Column("kind", String(16), primary_key=True),  # unsubscribe | hard_bounce | soft_bounce ...
    Column("email", String(320), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", Text, nullable=False),  # the outcome record as JSON
    Column("published_at", DateTime(timezone=True)),
    Index("ix_feedback_events_email_kind_at", "email", "kind", "at"),
    Index("ix_feedback_events_published_at_at", "published_at", "at"),
)

# Inbound mail the feedback service accepted but could not use (not a report, no token of
# ours, unreadable): kept with the reason for a person to look at, pruned after a retention.
feedback_dead_letters = Table(
    "feedback_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
    Column("reason", String(64), nullable=False),
    Column("detail", Text),
    Column("mail_from", String(320)),
    Column("rcpt_to", Text),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("content", LargeBinary, nullable=False),  # cut to 256 KiB; size and sha256 are whole
)
