"""Status callbacks: each client's callback, and the events owed to it (an outbox), written by
triggers on ``deliveries`` in the same transaction as every status change.

``callback_events_on_insert`` / ``callback_events_on_update`` are statement-level triggers with
transition tables: however many rows a statement changes (the senders' group-committed ``sent``
UPDATE changes dozens), the trigger runs once and writes the events with one INSERT ... SELECT.
They write an event only for a delivery whose status changed to one with an event
(``sent``, ``delivered``, ``failed``, ``skipped``, ``cancelled``; on INSERT, deliveries born with
one, such as ``skipped``), of a notification whose client has a callback that asks for that event.
When no client has a callback the triggers stop after one index probe.

The event's ``data`` is built in one place, ``callback_event_data(deliveries, notifications)``:
a later migration that adds a column the payload shows (``reference``, ``job_id``, ``template``,
``delivered_at``) replaces that function and nothing else.

Revision ID: 0007
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0003"
branch_labels = None
depends_on = None

EVENT_STATUSES = "('sent', 'delivered', 'failed', 'skipped', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("client", sa.Text, primary_key=True),  # the client certificate's CN
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        # After a rotation the previous secret signs too, until it expires (receivers move over).
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_failure", postgresql.JSONB),
    )
    op.create_table(
        "callback_events",
        # The webhook-id: the same on every attempt, so receivers can drop a repeat.
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True, server_default=sa.text("gen_random_uuid()")),
        sa.Column("client", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("notification_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("data", postgresql.JSONB, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        # Due time, and the lease while a callback sender works on it.
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("last_error", sa.Text),
        # Set when the event will not be sent (a 4xx, a refused address, 24 h of failures); kept.
        sa.Column("given_up_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "callback_events_due", "callback_events", ["client", "next_attempt_at"], postgresql_where=sa.text("given_up_at IS NULL")
    )
    op.execute(
        """
        CREATE FUNCTION callback_timestamp(value timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
            SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION callback_event_data(d deliveries, n notifications) RETURNS jsonb LANGUAGE sql STABLE AS $$
            SELECT jsonb_build_object(
                       'notification_id', d.notification_id, 'channel', d.channel, 'status', d.status,
                       'attempts', d.attempts, 'last_error', d.last_error, 'provider_message_id', d.provider_message_id,
                       'created_at', callback_timestamp(n.created_at))
                   -- The optional fields: present when set.
                   || jsonb_strip_nulls(jsonb_build_object('sent_at', callback_timestamp(d.sent_at)))
        $$
        """
    )
    for event, transition, join_old in (
        ("insert", "REFERENCING NEW TABLE AS new_deliveries", ""),
        (
            "update",
            "REFERENCING OLD TABLE AS old_deliveries NEW TABLE AS new_deliveries",
            "JOIN old_deliveries AS o ON o.notification_id = d.notification_id AND o.channel = d.channel AND o.status IS DISTINCT FROM d.status",
        ),
    ):
        op.execute(
            f"""
            CREATE FUNCTION callback_events_on_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NOT EXISTS (SELECT 1 FROM callbacks) THEN
                    RETURN NULL;
                END IF;
                INSERT INTO callback_events (client, type, notification_id, channel, data)
                SELECT n.client, 'delivery.' || d.status, d.notification_id, d.channel, callback_event_data(d, n)
                FROM new_deliveries AS d
                {join_old}
                JOIN notifications AS n ON n.id = d.notification_id
                JOIN callbacks AS c ON c.client = n.client
                WHERE d.status IN {EVENT_STATUSES} AND 'delivery.' || d.status = ANY (c.events);
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(
            f"CREATE TRIGGER callback_events_on_{event} AFTER {event.upper()} ON deliveries {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION callback_events_on_{event}()"
        )


def downgrade() -> None:
    for event in ("insert", "update"):
        op.execute(f"DROP TRIGGER callback_events_on_{event} ON deliveries")
        op.execute(f"DROP FUNCTION callback_events_on_{event}()")
    op.execute("DROP FUNCTION callback_event_data(deliveries, notifications)")
    op.execute("DROP FUNCTION callback_timestamp(timestamptz)")
    op.drop_index("callback_events_due", table_name="callback_events")
    op.drop_table("callback_events")
    op.drop_table("callbacks")
