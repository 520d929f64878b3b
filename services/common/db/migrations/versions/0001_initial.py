"""Profiles, identities, suppressions and delivery claims.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("profile_id", sa.String(64), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(200)),
        sa.Column("locale", sa.String(35)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("email_consent", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "identities",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("value", sa.String(320), primary_key=True),
        sa.Column(
            "profile_id",
            sa.String(64),
            sa.ForeignKey("profiles.profile_id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_identities_profile_id", "identities", ["profile_id"])
    op.create_table(
        "suppressions",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("idempotency_key", sa.String(128), primary_key=True),
        sa.Column("campaign", sa.String(100), nullable=False),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("smtp_message_id", sa.String(300)),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_deliveries_status_claimed_at", "deliveries", ["status", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_status_claimed_at", "deliveries")
    op.drop_table("deliveries")
    op.drop_table("suppressions")
    op.drop_index("ix_identities_profile_id", "identities")
    op.drop_table("identities")
    op.drop_table("profiles")
