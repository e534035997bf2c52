"""The gateway's per-client rate-limit token buckets.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
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
        "rate_limit_buckets",
        sa.Column("client", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("allowed", sa.Boolean, nullable=False),
        prefixes=["UNLOGGED"],
        postgresql_with={"fillfactor": 70},
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
