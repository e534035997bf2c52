"""CSV jobs: the ``jobs`` table (one uploaded CSV sent with one template), each notification's
``job_id``, and the job in the status callbacks' payload.

A job's rows are stored as notifications of their own (``notifications.job_id``), on the bulk
lane, with their deliveries and outbox rows, by the accept statement every notification takes
(gateway/jobs/). ``callback_event_data`` is rebuilt with everything 0015 has and ``job_id``
beside them (0007's docstring: the one function a new payload field replaces).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# Migration 0015's payload (delivered_at, template, reference), and the job beside them.
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
                                  THEN jsonb_build_object('name', n.template, 'version', n.template_version) END,
                      'reference', n.reference{job_id}))
    $$
"""


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("client", sa.Text, nullable=False),  # the client certificate's CN
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("template_version", sa.Integer, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    )
    # GET /jobs lists a client's jobs by id (time-ordered UUIDs).
    op.create_index("jobs_client_id", "jobs", ["client", "id"])
    # Nullable, no default: added without rewriting the table.
    op.add_column("notifications", sa.Column("job_id", postgresql.UUID(as_uuid=True), sa.ForeignKey("jobs.id")))
    # A job's counts and pages read its notifications; most notifications have none.
    op.create_index("notifications_job_id", "notifications", ["job_id", "id"], postgresql_where=sa.text("job_id IS NOT NULL"))
    op.execute(_EVENT_DATA.format(job_id=", 'job_id', n.job_id"))


def downgrade() -> None:
    op.execute(_EVENT_DATA.format(job_id=""))
    op.drop_index("notifications_job_id", table_name="notifications")
    op.drop_column("notifications", "job_id")
    op.drop_index("jobs_client_id", table_name="jobs")
    op.drop_table("jobs")
