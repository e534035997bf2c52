"""Every query on notifications and their deliveries (the outbox's own queries are in
``gateway/outbox/repository.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from gateway.notifications.plan import Plan, RecipientRecord
from gateway.recipients.preferences import Preferences
from shared.channels import CHANNELS, CONTACT_FIELDS

# What planning N notifications needs, in one statement: per item (in order), its recipient's
# contacts and preferences, which of its addresses are suppressed (a JSON object channel ->
# reason; NULL: none), and the latest version of the template it names (NULL when there is no
# such template, or it is deleted). Read by every accept, so a new version or a deletion is
# seen at once by every replica.
#
# $1 and $2 are one array each, an element per item: recipient, template (NULL: a plain message).
_PLAN_INPUTS = f"""
    SELECT r.name IS NOT NULL AS known, {", ".join(f"r.{field}" for field in CONTACT_FIELDS)}, r.preferences,
           t.latest_version AS template_latest,
           (SELECT json_object_agg(s.channel, s.reason) FROM suppressions AS s
            WHERE (s.channel, s.address) IN ({", ".join(f"('{spec.channel.value}', r.{spec.contact_field})" for spec in CHANNELS)})
           ) AS suppressed
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS i(recipient, template, position)
    LEFT JOIN recipients AS r ON r.name = i.recipient
    LEFT JOIN templates AS t ON t.name = i.template AND t.deleted_at IS NULL
    ORDER BY i.position
"""

# Store N planned notifications in one statement, one round trip, atomic: for each item the
# notification (with the recipient snapshot and content its plan has), one delivery per targeted
# channel (``pending``, or ``skipped`` with the reason), and the outbox row that publishes the
# channels not skipped (none when every channel is skipped). An item is not stored when its
# client already used its idempotency key; the statement returns the stored ones (id,
# created_at, outbox row), the caller looks the key up for the others. It runs on a bare asyncpg
# connection, which prepares it once and reuses it from its statement cache.
#
# $1..$17 are one array each, an element per item: id, recipient, phone number, email, Slack id
# (the snapshot), message, subject, content (JSON; NULL for a plain message), template, template
# version, category, targeted channels and published channels (comma-separated; NULL: none),
# client CN, client certificate serial, idempotency key, request hash, send_at and release time
# (NULL: at once). $18..$20: the skipped deliveries (notification id, channel, reason), usually
# none. $21: seconds until the outbox row of one released at once is the relay's. One with a
# release time has its deliveries ``scheduled`` and its outbox row due then, for the relay alone.
# $24, $25: references and lanes (bulk), an element per item. $26: delivery modes ("all",
# "first"); a targeted channel neither skipped nor published is ``waiting`` (delivery "first":
# the plan publishes its first channel not skipped, and migration 0017's trigger the next ones).
# $27: CSV jobs (NULL: none).
_ACCEPT = f"""
    WITH item AS (
        SELECT *
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                    $9::text[], $10::int[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                    $17::text[], $22::timestamptz[], $23::timestamptz[], $24::text[], $25::bool[], $26::text[], $27::uuid[])
             WITH ORDINALITY AS i(id, recipient, {", ".join(CONTACT_FIELDS)}, message, subject, content, template,
                                  template_version, category, channels, published, client, client_serial, idempotency_key,
                                  request_hash, send_at, release_at, reference, bulk, delivery, job_id, position)
    ),
    accepted AS (
        INSERT INTO notifications (id, recipient, {", ".join(CONTACT_FIELDS)}, message, subject, content, template,
                                   template_version, category, channels, client, client_serial, idempotency_key, request_hash,
                                   send_at, release_at, reference, bulk, delivery, job_id)
        SELECT id, recipient, {", ".join(CONTACT_FIELDS)}, message, subject, content::jsonb, template,
               template_version, category, string_to_array(channels, ','), client, client_serial, idempotency_key, request_hash,
               send_at, release_at, reference, bulk, delivery, job_id
        FROM item
        ORDER BY position
        ON CONFLICT (client, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id, created_at
    ),
    skipped AS (
        SELECT * FROM unnest($18::uuid[], $19::text[], $20::text[]) AS s(notification_id, channel, reason)
    ),
    new_deliveries AS (
        INSERT INTO deliveries (notification_id, channel, status, last_error)
        SELECT i.id, c.channel,
               CASE WHEN s.reason IS NOT NULL THEN 'skipped'
                    WHEN NOT c.channel = ANY (string_to_array(i.published, ',')) THEN 'waiting'
                    WHEN i.release_at IS NOT NULL THEN 'scheduled' ELSE 'pending' END,
               s.reason
        FROM item AS i
        JOIN accepted AS a ON a.id = i.id
        CROSS JOIN LATERAL unnest(string_to_array(i.channels, ',')) AS c(channel)
        LEFT JOIN skipped AS s ON s.notification_id = i.id AND s.channel = c.channel
    ),
    new_outbox AS (
        INSERT INTO outbox (notification_id, channels, next_attempt_at, release_at)
        SELECT i.id, string_to_array(i.published, ','), COALESCE(i.release_at, now() + make_interval(secs => $21::float8)),
               i.release_at
        FROM item AS i JOIN accepted AS a ON a.id = i.id
        WHERE i.published IS NOT NULL
        RETURNING id, notification_id
    )
    SELECT a.id, a.created_at, o.id AS outbox_id
    FROM accepted AS a LEFT JOIN new_outbox AS o ON o.notification_id = a.id
"""

# The notifications holding these (client, idempotency key) pairs: the earlier requests of
# items the accept did not store although their recipient has every channel they ask for.
_BY_IDEMPOTENCY_KEYS = """
    SELECT k.position, n.*
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(client, idempotency_key, position)
    JOIN notifications AS n ON n.client = k.client AND n.idempotency_key = k.idempotency_key
"""

# Notifications with their deliveries, as GET /notifications/{id} shows them: completed by a
# WHERE clause (one notification; a page of a job's).
_WITH_DELIVERIES = """
    SELECT n.*,
           NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.notification_id = n.id) AS published,
           COALESCE((
               SELECT json_object_agg(d.channel, json_build_object(
                   'status', d.status, 'attempts', d.attempts, 'last_error', d.last_error,
                   'provider', d.provider, 'provider_message_id', d.provider_message_id, 'created_at', d.created_at,
                   'updated_at', d.updated_at, 'sent_at', d.sent_at, 'delivered_at', d.delivered_at,
                   'release_at', CASE WHEN d.status = 'scheduled' THEN n.release_at END,
                   'receipts', COALESCE((
                       SELECT json_agg(json_build_object(
                           'event', r.event, 'type', r.type, 'subtype', r.subtype, 'at', r.at, 'detail', r.detail)
                           ORDER BY r.at, r.id)
                       FROM receipts AS r WHERE r.notification_id = d.notification_id AND r.channel = d.channel
                   ), '[]'::json)))
               FROM deliveries AS d WHERE d.notification_id = n.id
           ), '{}'::json) AS deliveries
    FROM notifications AS n
"""

_STATUS = f"{_WITH_DELIVERIES} WHERE n.id = $1 AND ($2::text IS NULL OR n.client = $2)"

# A page of a job's notifications after the id $2 (NULL: from the first), those with a delivery
# in the status $3 (NULL: any), in id order.
_JOB_PAGE = f"""{_WITH_DELIVERIES}
    WHERE n.job_id = $1 AND ($2::uuid IS NULL OR n.id > $2)
      AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM deliveries AS s WHERE s.notification_id = n.id AND s.status = $3))
    ORDER BY n.id LIMIT $4
"""

# Cancel what is still scheduled of notifications (one, or a CSV job's): their deliveries become
# ``cancelled`` (with the ``waiting`` ones of a delivery "first" notification whose first channel
# is scheduled) and their outbox rows go, so they are never published. Two statements in one
# transaction: the outbox rows are locked first, in the order the relay's claim locks them
# (outbox, then deliveries), so a cancel and a claim of the same notification wait for each
# other rather than deadlock; a claim that committed first has made the deliveries ``pending``
# and they are not cancelled. $1: the notifications, as the ids a subquery selects.
_LOCK_SCHEDULED = """
    SELECT o.id FROM outbox AS o WHERE o.notification_id IN ({notifications}) AND o.release_at IS NOT NULL
    ORDER BY o.id FOR UPDATE OF o
"""
# $1: the outbox rows locked. Returns how many deliveries it cancelled.
_CANCEL_LOCKED = """
    WITH locked AS (
        SELECT id, notification_id, channels FROM outbox WHERE id = ANY($1::bigint[])
    ),
    cancelled AS (
        UPDATE deliveries AS d SET status = 'cancelled', updated_at = now()
        FROM locked AS l
        WHERE d.notification_id = l.notification_id
          AND ((d.status = 'scheduled' AND d.channel = ANY (l.channels))
               OR (d.status = 'waiting'
                   AND EXISTS (SELECT 1 FROM deliveries AS s WHERE s.notification_id = l.notification_id AND s.status = 'scheduled')))
        RETURNING d.notification_id
    ),
    unpublished AS (
        DELETE FROM outbox WHERE id IN (SELECT id FROM locked) AND notification_id IN (SELECT notification_id FROM cancelled)
    )
    SELECT count(*) FROM cancelled
"""
# Which notifications a cancel is of: one by its id; every one of a job.
ONE_NOTIFICATION = "$1::uuid"
NOTIFICATIONS_OF_JOB = "SELECT n.id FROM notifications AS n WHERE n.job_id = $1::uuid"


@dataclass(slots=True)  # not frozen: made for every item of every accept (see plan.py)
class PlanInputs:
    """What an item is planned with: its recipient (None: unknown) and the latest version of its
    template (None: a plain message, or no such template)."""

    recipient: RecipientRecord | None
    template_latest: int | None


@dataclass(slots=True)  # not frozen: made for every item of every accept (see plan.py)
class NewNotification:
    """One planned notification, as the accept statement stores it."""

    id: UUID
    recipient: RecipientRecord
    message: str | None
    subject: str | None
    content: str | None  # the plan's content as JSON (a template notification)
    template: str | None
    template_version: int | None
    plan: Plan  # the channels targeted, skipped (and why) and published, the category
    client: str
    client_serial: str
    idempotency_key: str | None
    request_hash: str | None
    send_at: datetime | None = None
    reference: str | None = None
    bulk: bool = False
    delivery: str = "all"  # DeliveryMode
    job_id: UUID | None = None


class NotificationRepository:
    async def plan_inputs(self, connection: asyncpg.Connection, items: Sequence[tuple[str, str | None]]) -> list[PlanInputs]:
        """For each (recipient, template), in order: see ``_PLAN_INPUTS``."""
        rows = await connection.fetch(_PLAN_INPUTS, [recipient for recipient, _ in items], [template for _, template in items])
        # Positional, in _PLAN_INPUTS's column order: this runs for every item of every accept.
        contacts = slice(1, 1 + len(CONTACT_FIELDS))
        preferences, latest, suppressed = 1 + len(CONTACT_FIELDS), 2 + len(CONTACT_FIELDS), 3 + len(CONTACT_FIELDS)
        return [
            PlanInputs(
                RecipientRecord(
                    name,
                    *row[contacts],
                    preferences=Preferences.from_column(row[preferences]),
                    suppressed=json.loads(row[suppressed]) if row[suppressed] is not None else None,
                )
                if row[0]
                else None,
                row[latest],
            )
            for (name, _), row in zip(items, rows, strict=True)
        ]

    async def accept(
        self, connection: asyncpg.Connection, notifications: Sequence[NewNotification], *, outbox_grace_seconds: float
    ) -> dict[UUID, asyncpg.Record]:
        """Store ``notifications`` in one statement (see ``_ACCEPT``); the stored ones' rows
        (``created_at``, ``outbox_id``) by id."""
        skipped = [(item.id, channel, reason) for item in notifications for channel, reason in item.plan.skipped.items()]
        rows = await connection.fetch(
            _ACCEPT,
            [item.id for item in notifications],
            [item.recipient.name for item in notifications],
            *([getattr(item.recipient, field) for item in notifications] for field in CONTACT_FIELDS),
            [item.message for item in notifications],
            [item.subject for item in notifications],
            [item.content for item in notifications],
            [item.template for item in notifications],
            [item.template_version for item in notifications],
            [item.plan.category for item in notifications],
            [",".join(item.plan.channels) for item in notifications],
            [",".join(item.plan.published) or None for item in notifications],
            [item.client for item in notifications],
            [item.client_serial for item in notifications],
            [item.idempotency_key for item in notifications],
            [item.request_hash for item in notifications],
            [notification_id for notification_id, _, _ in skipped],
            [channel for _, channel, _ in skipped],
            [reason for _, _, reason in skipped],
            outbox_grace_seconds,
            [item.send_at for item in notifications],
            [item.plan.release_at for item in notifications],
            [item.reference for item in notifications],
            [item.bulk for item in notifications],
            [item.delivery for item in notifications],
            [item.job_id for item in notifications],
        )
        return {row["id"]: row for row in rows}

    async def by_idempotency_keys(self, connection: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> dict[int, asyncpg.Record]:
        """The notifications (rows) holding these (client, key) pairs, by the pair's position (1-based)."""
        rows = await connection.fetch(_BY_IDEMPOTENCY_KEYS, [client for client, _ in keys], [key for _, key in keys])
        return {row["position"]: row for row in rows}

    async def cancel_scheduled(self, connection: asyncpg.Connection, *, notification_id: UUID) -> int:
        """Cancel the notification's scheduled deliveries (see ``_LOCK_SCHEDULED``); how many."""
        return await self._cancel(connection, ONE_NOTIFICATION, notification_id)

    async def cancel_scheduled_of_job(self, connection: asyncpg.Connection, *, job_id: UUID) -> int:
        """Cancel every scheduled delivery of the job's notifications; how many."""
        return await self._cancel(connection, NOTIFICATIONS_OF_JOB, job_id)

    async def _cancel(self, connection: asyncpg.Connection, notifications: str, key: UUID) -> int:
        async with connection.transaction():
            locked = [row["id"] for row in await connection.fetch(_LOCK_SCHEDULED.format(notifications=notifications), key)]
            return int(await connection.fetchval(_CANCEL_LOCKED, locked)) if locked else 0

    async def job_page(
        self, connection: asyncpg.Connection, *, job_id: UUID, after: UUID | None, status: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """A page of the job's notifications with their deliveries (see ``_JOB_PAGE``)."""
        rows = await connection.fetch(_JOB_PAGE, job_id, after, status, limit)
        return [{**row, "deliveries": json.loads(row["deliveries"])} for row in rows]

    async def status(self, connection: asyncpg.Connection, *, notification_id: UUID, client: str | None) -> dict[str, Any] | None:
        """The notification and its deliveries; only when ``client`` created it (None: whoever did)."""
        row = await connection.fetchrow(_STATUS, notification_id, client)
        if row is None:
            return None
        return {**row, "deliveries": json.loads(row["deliveries"])}
