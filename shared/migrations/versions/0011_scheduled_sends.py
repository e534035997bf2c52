"""Scheduled sends and quiet hours: a notification's ``send_at`` and ``release_at``, the outbox
row's ``release_at`` (a publication not owed before then), and the ``scheduled`` and
``cancelled`` delivery statuses.

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None

STATUSES_BEFORE = ("pending", "sending", "sent", "failed", "skipped")
STATUSES = (*STATUSES_BEFORE, "scheduled", "cancelled")


def _statuses(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.add_column("notifications", sa.Column("send_at", sa.DateTime(timezone=True)))
    op.add_column("notifications", sa.Column("release_at", sa.DateTime(timezone=True)))
    op.add_column("outbox", sa.Column("release_at", sa.DateTime(timezone=True)))
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES))


def downgrade() -> None:
    # The older schema cannot hold a scheduled notification: release what is scheduled now
    # (the outbox publishes it at once) and keep the cancelled ones as skipped.
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'scheduled'")
    op.execute("UPDATE deliveries SET status = 'skipped', last_error = 'cancelled' WHERE status = 'cancelled'")
    op.execute("UPDATE outbox SET next_attempt_at = now() WHERE release_at IS NOT NULL")
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES_BEFORE))
    op.drop_column("outbox", "release_at")
    op.drop_column("notifications", "release_at")
    op.drop_column("notifications", "send_at")
