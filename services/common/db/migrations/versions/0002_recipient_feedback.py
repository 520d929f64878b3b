"""Recipient feedback: token references, feedback events (with their outbox), dead letters.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_refs",
        sa.Column("ref", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("campaign", sa.String(100), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_message_refs_expires_at", "message_refs", ["expires_at"])
    op.create_table(
        "feedback_events",
        sa.Column("ref", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_feedback_events_email_kind_at", "feedback_events", ["email", "kind", "at"])
    op.create_index("ix_feedback_events_published_at_at", "feedback_events", ["published_at", "at"])
    op.create_table(
        "feedback_dead_letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("mail_from", sa.String(320)),
        sa.Column("rcpt_to", sa.Text),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_feedback_dead_letters_received_at", "feedback_dead_letters", ["received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_feedback_dead_letters_received_at", "feedback_dead_letters")
    op.drop_table("feedback_dead_letters")
    op.drop_index("ix_feedback_events_published_at_at", "feedback_events")
    op.drop_index("ix_feedback_events_email_kind_at", "feedback_events")
    op.drop_table("feedback_events")
    op.drop_index("ix_message_refs_expires_at", "message_refs")
    op.drop_table("message_refs")
