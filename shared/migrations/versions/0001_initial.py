"""Recipients, notifications, per-channel deliveries and the publishing outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("phone_number", sa.String(16)),
        sa.Column("email", sa.String(320)),
        sa.Column("slack_id", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint(
            "phone_number IS NOT NULL OR email IS NOT NULL OR slack_id IS NOT NULL", name="recipients_has_contact"
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("recipient", sa.String(128), nullable=False),
        sa.Column("phone_number", sa.String(16)),
        sa.Column("email", sa.String(320)),
        sa.Column("slack_id", sa.String(32)),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("subject", sa.Text),
        sa.Column("channels", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("client_serial", sa.Text, nullable=False),
        sa.Column("idempotency_key", sa.Text),
        sa.Column("request_hash", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index(
        "notifications_client_idempotency_key",
        "notifications",
        ["client", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_index("notifications_created_at", "notifications", ["created_at"])
    op.create_table(
        "deliveries",
        sa.Column(
            "notification_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("provider_message_id", sa.Text),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('pending', 'sending', 'sent', 'failed')", name="deliveries_status"),
        sa.CheckConstraint("channel IN ('sms', 'email', 'slack')", name="deliveries_channel"),
    )
    op.create_table(
        "outbox",
        sa.Column(
            "notification_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("outbox_next_attempt_at", "outbox", ["next_attempt_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("deliveries")
    op.drop_index("notifications_created_at", table_name="notifications")
    op.drop_index("notifications_client_idempotency_key", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("recipients")
