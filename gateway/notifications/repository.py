"""Every query on notifications and their deliveries (the outbox's own queries are in
``gateway/outbox/repository.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from shared.channels import CHANNEL_NAMES, CONTACT_FIELDS

_CHANNEL_NAMES_SQL = "ARRAY[" + ", ".join(f"'{name}'" for name in CHANNEL_NAMES) + "]"


def _contacts_sql(table: str) -> str:
    return "ARRAY[" + ", ".join(f"{table}.{field}" for field in CONTACT_FIELDS) + "]"


# Accept N notifications in one statement, one round trip, atomic: for each item take the
# recipient's contact data as a snapshot, and insert the notification, one pending delivery per
# targeted channel and the outbox row that publishes it. An item is not inserted when its
# recipient is unknown, a requested channel is not one the recipient has, or its client already
# used its idempotency key; the statement returns, per item and in order, what tells which
# (``known``, ``available``; the caller looks the key up when neither explains it) and, for an
# inserted one, what the database added (the snapshot, the targeted channels, created_at, the
# outbox row). It runs on a bare asyncpg connection, which prepares it once and reuses it from
# its statement cache; it returns no more than that, since decoding columns costs CPU on the
# gateway's hot path.
#
# $1..$9 are one array each, an element per item: id, recipient, message, subject, requested
# channels (NULL: all the recipient has; else comma-separated), client CN, client certificate
# serial, idempotency key, request hash. $10: seconds until the outbox row is the relay's.
_ACCEPT = f"""
    WITH item AS (
        SELECT *
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
             WITH ORDINALITY AS i(id, recipient, message, subject, requested, client, client_serial, idempotency_key,
                                  request_hash, position)
    ),
    planned AS (
        SELECT item.*, r.name IS NOT NULL AS known, {", ".join(f"r.{field}" for field in CONTACT_FIELDS)},
               available.channels AS available,
               ARRAY(
                   SELECT c.channel FROM unnest(available.channels) WITH ORDINALITY AS c(channel, n)
                   WHERE item.requested IS NULL OR c.channel = ANY(string_to_array(item.requested, ','))
                   ORDER BY c.n
               ) AS channels
        FROM item
        LEFT JOIN recipients AS r ON r.name = item.recipient
        CROSS JOIN LATERAL (
            SELECT ARRAY(
                SELECT c.channel FROM unnest({_CHANNEL_NAMES_SQL}, {_contacts_sql("r")}) WITH ORDINALITY AS c(channel, address, n)
                WHERE c.address IS NOT NULL ORDER BY c.n
            ) AS channels
        ) AS available
    ),
    accepted AS (
        INSERT INTO notifications (id, recipient, {", ".join(CONTACT_FIELDS)}, message, subject, channels,
                                   client, client_serial, idempotency_key, request_hash)
        SELECT id, recipient, {", ".join(CONTACT_FIELDS)}, message, subject, channels,
               client, client_serial, idempotency_key, request_hash
        FROM planned
        WHERE known AND (requested IS NULL OR string_to_array(requested, ',') <@ available)
        ORDER BY position
        ON CONFLICT (client, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING id, created_at
    ),
    new_deliveries AS (
        INSERT INTO deliveries (notification_id, channel)
        SELECT p.id, unnest(p.channels) FROM planned AS p JOIN accepted AS a ON a.id = p.id
    ),
    new_outbox AS (
        INSERT INTO outbox (notification_id, channels, next_attempt_at)
        SELECT p.id, p.channels, now() + make_interval(secs => $10::float8) FROM planned AS p JOIN accepted AS a ON a.id = p.id
        RETURNING id, notification_id
    )
    SELECT p.known, p.available, o.id AS outbox_id, a.created_at, p.channels, {", ".join(f"p.{field}" for field in CONTACT_FIELDS)}
    FROM planned AS p
    LEFT JOIN accepted AS a ON a.id = p.id
    LEFT JOIN new_outbox AS o ON o.notification_id = p.id
    ORDER BY p.position
"""

# The notifications holding these (client, idempotency key) pairs: the earlier requests of
# items the accept did not store although their recipient has every channel they ask for.
_BY_IDEMPOTENCY_KEYS = """
    SELECT k.position, n.*
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(client, idempotency_key, position)
    JOIN notifications AS n ON n.client = k.client AND n.idempotency_key = k.idempotency_key
"""

_STATUS = """
    SELECT n.*,
           NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.notification_id = n.id) AS published,
           COALESCE((
               SELECT json_object_agg(d.channel, json_build_object(
                   'status', d.status, 'attempts', d.attempts, 'last_error', d.last_error,
                   'provider_message_id', d.provider_message_id, 'created_at', d.created_at,
                   'updated_at', d.updated_at, 'sent_at', d.sent_at))
               FROM deliveries AS d WHERE d.notification_id = n.id
           ), '{}'::json) AS deliveries
    FROM notifications AS n WHERE n.id = $1 AND ($2::text IS NULL OR n.client = $2)
"""


@dataclass(frozen=True, slots=True)
class NewNotification:
    """One notification to accept, as the accept statement takes it."""

    id: UUID
    recipient: str
    message: str
    subject: str | None
    requested: Sequence[str] | None  # channel names; None: every channel the recipient has
    client: str
    client_serial: str
    idempotency_key: str | None
    request_hash: str | None


class NotificationRepository:
    async def accept(
        self, connection: asyncpg.Connection, notifications: Sequence[NewNotification], *, outbox_grace_seconds: float
    ) -> list[asyncpg.Record]:
        """Store ``notifications`` in one statement; one row per item, in order (see ``_ACCEPT``):
        ``outbox_id`` is set for the ones it stored."""
        return await connection.fetch(
            _ACCEPT,
            [item.id for item in notifications],
            [item.recipient for item in notifications],
            [item.message for item in notifications],
            [item.subject for item in notifications],
            [None if item.requested is None else ",".join(item.requested) for item in notifications],
            [item.client for item in notifications],
            [item.client_serial for item in notifications],
            [item.idempotency_key for item in notifications],
            [item.request_hash for item in notifications],
            outbox_grace_seconds,
        )

    async def by_idempotency_keys(self, connection: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> dict[int, asyncpg.Record]:
        """The notifications (rows) holding these (client, key) pairs, by the pair's position (1-based)."""
        rows = await connection.fetch(_BY_IDEMPOTENCY_KEYS, [client for client, _ in keys], [key for _, key in keys])
        return {row["position"]: row for row in rows}

    async def status(self, connection: asyncpg.Connection, *, notification_id: UUID, client: str | None) -> dict[str, Any] | None:
        """The notification and its deliveries; only when ``client`` created it (None: whoever did)."""
        row = await connection.fetchrow(_STATUS, notification_id, client)
        if row is None:
            return None
        return {**row, "deliveries": json.loads(row["deliveries"])}
