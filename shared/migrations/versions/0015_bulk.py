"""Bulk sends: a notification's client ``reference`` and its lane (``bulk``: sent from a batch),
and the reference in the status callbacks' payload.

``bulk`` says which SNS lane the notification's message takes (``shared/topology.py``: a bulk
message goes to the channels' ``*_bulk_notifications`` queues, so a large batch never queues in
front of a one-off). ``reference`` is the client's own identifier for an item (up to 128
characters), shown in ``GET /notifications/{id}`` and, when set, in the callback payload, which
``callback_event_data`` builds (the one function migration 0007 says a later column changes).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# Migration 0013's payload (delivered_at, template), and the reference beside them.
_EVENT_DATA = """
    CREATE OR REPLACE FUNCTION callback_event_data(d deliveries, n notifications) RETURNS jsonb LANGUAGE sql STABLE AS $$
        SELECT jsonb_build_object(
                   'notification_id', d.notification_id, 'channel', d.channel, 'status', d.status,
                   'attempts', d.attempts, 'last_error', d.last_error, 'provider_message_id', d.provider_message_id,
                   'created_at', callback_timestamp(n.created_at))
               -- The optional fields: present when set.
               || jsonb_strip_nulls(jsonb_build_object(
                      'sent_at', callback_timestamp(d.sent_at), 'delivered_at', callback_timestamp(d.delivered_at),
                      'template', CASE WHEN n.template IS NOT NULL
                                  THEN jsonb_build_object('name', n.template, 'version', n.template_version) END{reference}))
    $$
"""


def upgrade() -> None:
    op.add_column("notifications", sa.Column("reference", sa.String(128)))
    # NOT NULL with a constant default: Postgres 11+ adds it without rewriting the table.
    op.add_column("notifications", sa.Column("bulk", sa.Boolean, nullable=False, server_default=sa.false()))
    op.execute(_EVENT_DATA.format(reference=", 'reference', n.reference"))


def downgrade() -> None:
    op.execute(_EVENT_DATA.format(reference=""))
    op.drop_column("notifications", "bulk")
    op.drop_column("notifications", "reference")
