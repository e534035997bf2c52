"""Templates (versioned), recipients' preferences, a notification's template, category and
rendered content, and the ``skipped`` delivery status.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATUSES_BEFORE = ("pending", "sending", "sent", "failed")
STATUSES = (*STATUSES_BEFORE, "skipped")


def _statuses(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("latest_version", sa.Integer, nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "template_versions",
        sa.Column("name", sa.String(128), sa.ForeignKey("templates.name"), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("content", postgresql.JSONB, nullable=False),
        sa.Column("category", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.add_column("recipients", sa.Column("preferences", postgresql.JSONB))
    op.alter_column("notifications", "message", nullable=True)
    op.add_column("notifications", sa.Column("content", postgresql.JSONB))
    op.add_column("notifications", sa.Column("template", sa.String(128)))
    op.add_column("notifications", sa.Column("template_version", sa.Integer))
    # NOT NULL with a constant default: Postgres 11+ adds it without rewriting the table.
    op.add_column("notifications", sa.Column("category", sa.Text, nullable=False, server_default="general"))
    op.create_check_constraint("notifications_has_content", "notifications", "message IS NOT NULL OR content IS NOT NULL")
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES))


def downgrade() -> None:
    # Template notifications have no plain message: they cannot be kept in the older schema.
    op.execute("DELETE FROM notifications WHERE message IS NULL")
    op.execute("DELETE FROM deliveries WHERE status = 'skipped'")
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES_BEFORE))
    op.drop_constraint("notifications_has_content", "notifications", type_="check")
    op.drop_column("notifications", "category")
    op.drop_column("notifications", "template_version")
    op.drop_column("notifications", "template")
    op.drop_column("notifications", "content")
    op.alter_column("notifications", "message", nullable=False)
    op.drop_column("recipients", "preferences")
    op.drop_table("template_versions")
    op.drop_table("templates")
