""""First channel that works": a notification's ``delivery`` mode, the ``waiting`` status, the
trigger that moves a ``first`` notification on to its next channel, and the provider in the
status callbacks' payload.

A notification with ``delivery = 'first'`` has its deliveries tried one at a time, in the order
of ``notifications.channels`` (the order the client gave): the accept stores the first channel
not skipped ``pending`` (or ``scheduled``) with the outbox row that publishes it, and the others
``waiting``. The rest is ``first_delivery_advance``, a statement-level trigger on ``deliveries``
(transition tables, as the callback triggers of 0007), so every step happens in the transaction
that records the outcome it follows from, whoever records it (a sender's ``failed`` or ``sent``,
a receipt), and no process can die between the two:

- a delivery becomes ``sent``: the notification's ``waiting`` deliveries become ``cancelled``
  (``last_error`` ``not needed: <channel> was sent``);
- a delivery becomes ``failed`` or ``skipped`` and none of the notification's others is under
  way or done (``scheduled``, ``pending``, ``sending``, ``sent``, ``delivered``): the first
  ``waiting`` one in order becomes ``pending``, and an outbox row addressing that channel alone
  is written, due at once (the gateway's relay publishes it at its next pass);
- a receipt turns a ``sent`` delivery ``failed`` (a bounce, a carrier failure) after the others
  were cancelled for it: those become ``waiting`` again and the rule above releases the next.
  It is the one move back from a final status, and only ever from ``cancelled`` by this trigger:
  a client's cancel happens before anything is sent.

The status changes write their callback events through 0007's triggers (``delivery.cancelled``).
The trigger does nothing for the statements it runs itself (``pg_trigger_depth() > 1``): each
of them is one of the steps above, already complete. When no delivery is ``waiting`` anywhere (no ``first`` notification in flight) the trigger stops
after one probe of the partial index ``deliveries_waiting``, unless a ``sent`` delivery failed.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

STATUSES_BEFORE = ("pending", "sending", "sent", "failed", "skipped", "scheduled", "cancelled", "delivered")
STATUSES = (*STATUSES_BEFORE, "waiting")
DELIVERY_MODES = ("all", "first")

# Migration 0016's payload (0015's and the job), and the provider of the attempt beside its optional fields.
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
                      'reference', n.reference, 'job_id', n.job_id{provider}))
    $$
"""

_ADVANCE = """
    CREATE FUNCTION first_delivery_advance() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Its own UPDATEs below need nothing more (and would otherwise fire it without end).
        IF pg_trigger_depth() > 1 THEN
            RETURN NULL;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM deliveries WHERE status = 'waiting')
           AND NOT EXISTS (SELECT 1 FROM new_deliveries AS d
                           JOIN old_deliveries AS o ON o.notification_id = d.notification_id AND o.channel = d.channel
                           WHERE o.status = 'sent' AND d.status = 'failed') THEN
            RETURN NULL;
        END IF;
        -- One channel was sent: the others are not needed.
        UPDATE deliveries AS w
        SET status = 'cancelled', last_error = 'not needed: ' || d.channel || ' was sent', updated_at = now()
        FROM new_deliveries AS d
        JOIN old_deliveries AS o ON o.notification_id = d.notification_id AND o.channel = d.channel
        WHERE d.status IN ('sent', 'delivered') AND o.status NOT IN ('sent', 'delivered')
          AND w.notification_id = d.notification_id AND w.status = 'waiting';
        -- A receipt says the sent one failed after all: what was cancelled for it waits again.
        UPDATE deliveries AS w
        SET status = 'waiting', last_error = NULL, updated_at = now()
        FROM new_deliveries AS d
        JOIN old_deliveries AS o ON o.notification_id = d.notification_id AND o.channel = d.channel
        JOIN notifications AS n ON n.id = d.notification_id
        WHERE o.status = 'sent' AND d.status = 'failed' AND n.delivery = 'first'
          AND w.notification_id = d.notification_id AND w.status = 'cancelled';
        -- One channel ended without reaching the recipient: release the next one waiting, in
        -- the client's order, when nothing else of the notification is under way or done.
        WITH ended AS (
            SELECT DISTINCT d.notification_id
            FROM new_deliveries AS d
            JOIN old_deliveries AS o ON o.notification_id = d.notification_id AND o.channel = d.channel
            WHERE d.status IN ('failed', 'skipped') AND o.status NOT IN ('failed', 'skipped')
        ),
        next AS (
            SELECT DISTINCT ON (w.notification_id) w.notification_id, w.channel
            FROM ended AS e
            JOIN deliveries AS w ON w.notification_id = e.notification_id AND w.status = 'waiting'
            JOIN notifications AS n ON n.id = e.notification_id
            WHERE NOT EXISTS (
                SELECT 1 FROM deliveries AS x
                WHERE x.notification_id = e.notification_id
                  AND x.status IN ('scheduled', 'pending', 'sending', 'sent', 'delivered'))
            ORDER BY w.notification_id, array_position(n.channels, w.channel)
        ),
        released AS (
            UPDATE deliveries AS w SET status = 'pending', updated_at = now()
            FROM next
            WHERE w.notification_id = next.notification_id AND w.channel = next.channel AND w.status = 'waiting'
            RETURNING w.notification_id, w.channel
        )
        INSERT INTO outbox (notification_id, channels) SELECT notification_id, ARRAY[channel] FROM released;
        RETURN NULL;
    END
    $$
"""


def _statuses(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    # NOT NULL with a constant default: added without rewriting the table; every notification so
    # far was delivered on all its channels.
    op.add_column("notifications", sa.Column("delivery", sa.Text, nullable=False, server_default="all"))
    op.create_check_constraint(
        "notifications_delivery", "notifications", f"delivery IN ({', '.join(repr(mode) for mode in DELIVERY_MODES)})"
    )
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES))
    op.create_index("deliveries_waiting", "deliveries", ["notification_id"], postgresql_where=sa.text("status = 'waiting'"))
    op.execute(_ADVANCE)
    op.execute(
        "CREATE TRIGGER first_delivery_advance AFTER UPDATE ON deliveries "
        "REFERENCING OLD TABLE AS old_deliveries NEW TABLE AS new_deliveries "
        "FOR EACH STATEMENT EXECUTE FUNCTION first_delivery_advance()"
    )
    op.execute(_EVENT_DATA.format(provider=", 'provider', d.provider"))


def downgrade() -> None:
    op.execute(_EVENT_DATA.format(provider=""))
    op.execute("DROP TRIGGER first_delivery_advance ON deliveries")
    op.execute("DROP FUNCTION first_delivery_advance()")
    op.drop_index("deliveries_waiting", table_name="deliveries")
    # The older schema has no way to wait: what still waits will not be tried.
    op.execute("UPDATE deliveries SET status = 'cancelled', last_error = 'not tried: downgraded' WHERE status = 'waiting'")
    op.drop_constraint("deliveries_status", "deliveries", type_="check")
    op.create_check_constraint("deliveries_status", "deliveries", _statuses(STATUSES_BEFORE))
    op.drop_constraint("notifications_delivery", "notifications", type_="check")
    op.drop_column("notifications", "delivery")
