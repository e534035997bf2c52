"""The outbox's rows become publications: an id of their own and the channels they address.

A notification may now have several outbox rows (a later publication addressing one channel
only), so a row is no longer keyed by its notification. Existing rows address every channel
their notification targets, which is what each of them published until now.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("id", sa.BigInteger, sa.Identity(always=True), nullable=False))
    op.add_column("outbox", sa.Column("channels", postgresql.ARRAY(sa.Text)))
    op.execute("UPDATE outbox AS o SET channels = n.channels FROM notifications AS n WHERE n.id = o.notification_id")
    op.alter_column("outbox", "channels", nullable=False)
    op.drop_constraint("outbox_pkey", "outbox", type_="primary")
    op.create_primary_key("outbox_pkey", "outbox", ["id"])
    op.create_index("outbox_notification_id", "outbox", ["notification_id"])


def downgrade() -> None:
    # One row per notification again: of several, the oldest stays (publishing it publishes
    # every channel the notification targets, as before).
    op.execute("DELETE FROM outbox AS o USING outbox AS older WHERE older.notification_id = o.notification_id AND older.id < o.id")
    op.drop_index("outbox_notification_id", table_name="outbox")
    op.drop_constraint("outbox_pkey", "outbox", type_="primary")
    op.create_primary_key("outbox_pkey", "outbox", ["notification_id"])
    op.drop_column("outbox", "channels")
    op.drop_column("outbox", "id")
