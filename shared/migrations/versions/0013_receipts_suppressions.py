"""Provider receipts and the suppression list: the ``delivered`` status, ``deliveries.delivered_at``,
each delivery's receipts (deduplicated by the provider's event id), the suppressed addresses, and
the callback payload's ``delivered_at`` and ``template``.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

STATUSES_BEFORE = ("pending", "sending", "sent", "failed", "skipped", "scheduled", "cancelled")
STATUSES = (*STATUSES_BEFORE, "delivered")

# The payload's data (see 0007's docstring: the one function a new payload field replaces).
_EVENT_DATA = """
    CREATE OR REPLACE FUNCTION callback_event_data(d deliveries, n notifications) RETURNS jsonb LANGUAGE sql STABLE AS $$
        SELECT jsonb_build_object(
                   'notification_id', d.notification_id, 'channel', d.channel, 'status', d.status,
                   'attempts', d.attempts, 'last_error', d.last_error, 'provider_message_id', d.provider_message_id,
                   'created_at', callback_timestamp(n.created_at))
               -- The optional fields: present when set.
               || jsonb_strip_nulls(jsonb_build_object(
                      'sent_at', callback_timestamp(d.sent_at){delivered_at}{template}))
    $$
"""
_DELIVERED_AT = ", 'delivered_at', callback_timestamp(d.delivered_at)"
_TEMPLATE = (
    ", 'template', CASE WHEN n.template IS NOT NULL"
    " THEN jsonb_build_object('name', n.template, 'version', n.template_version) END"
)


def _statuses(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES))
    op.add_column("deliveries", sa.Column("delivered_at", sa.DateTime(timezone=True)))
    # Receipts are matched on the provider's message id.
    op.create_index(
        "deliveries_provider_message_id",
        "deliveries",
        ["provider_message_id"],
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )
    op.create_table(
        "receipts",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("notification_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("type", sa.Text),
        sa.Column("subtype", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", postgresql.JSONB, nullable=False),
        # Unique: a receipt delivered twice (SQS at least once, overlapping log windows) is kept once.
        sa.Column("provider_event_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.ForeignKeyConstraint(
            ["notification_id", "channel"], ["deliveries.notification_id", "deliveries.channel"], ondelete="CASCADE"
        ),
        sa.UniqueConstraint("channel", "provider_event_id", name="receipts_provider_event_id"),
    )
    op.create_index("receipts_delivery", "receipts", ["notification_id", "channel", "at"])
    op.create_table(
        "suppressions",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("address", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("notification_id", postgresql.UUID(as_uuid=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute(_EVENT_DATA.format(delivered_at=_DELIVERED_AT, template=_TEMPLATE))


def downgrade() -> None:
    op.execute(_EVENT_DATA.format(delivered_at="", template=""))
    op.drop_table("suppressions")
    op.drop_index("receipts_delivery", table_name="receipts")
    op.drop_table("receipts")
    op.drop_index("deliveries_provider_message_id", table_name="deliveries")
    op.execute("UPDATE deliveries SET status = 'sent' WHERE status = 'delivered'")
    op.drop_column("deliveries", "delivered_at")
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES_BEFORE))
