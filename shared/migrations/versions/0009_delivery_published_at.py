"""``deliveries.published_at``: when SNS last took a message for the delivery (the outbox writes it);
``provider_rate_limit_buckets``: the senders' provider rate limits shared by their replicas.

``notifyctl reconcile`` tells a delivery whose message is lost (its queue purged, or lost with a
region) from one whose message is still on its way by this and the row's other signs of life
(``updated_at``, ``claimed_until``). Rows published before this migration keep NULL: for them
``updated_at`` (at the latest, the accept) is the sign of life.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("published_at", sa.DateTime(timezone=True)))
    # As rate_limit_buckets (0002): UNLOGGED, room on each page for HOT updates.
    op.create_table(
        "provider_rate_limit_buckets",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        prefixes=["UNLOGGED"],
        postgresql_with={"fillfactor": 70},
    )


def downgrade() -> None:
    op.drop_table("provider_rate_limit_buckets")
    op.drop_column("deliveries", "published_at")
