"""The provider that made a delivery's last attempt (``deliveries.provider``: "sns", "twilio", "ses" ...).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: Postgres adds it without rewriting the table; rows sent before
    # this release keep NULL (their provider was the channel's only one).
    op.add_column("deliveries", sa.Column("provider", sa.Text))


def downgrade() -> None:
    op.drop_column("deliveries", "provider")
