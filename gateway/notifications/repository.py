"""Every query on notifications, their deliveries and the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID as PG_UUID
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Float

from shared.messages import NotificationMessage, RecipientSnapshot

# One statement, one round trip, atomic on its own: take the recipient's contact data as a
# snapshot, insert the notification, one pending delivery per channel and the outbox row. It
# inserts nothing when the recipient is unknown, a requested channel is not one the recipient
# has, or the client already used the idempotency key; the caller then finds out which.
# It runs on a bare asyncpg connection (so do the lookups that explain a refusal): this is the hot
# path, and SQLAlchemy's checkout and statement handling cost more CPU than the statement. asyncpg
# prepares it once per connection and reuses it from its statement cache.
_ACCEPT = """
    WITH accepted AS (
        INSERT INTO notifications (id, recipient, phone_number, email, slack_id, message, subject, channels,
                                   client, client_serial, idempotency_key, request_hash)
        SELECT $1::uuid, r.name, r.phone_number, r.email, r.slack_id, $3, $4, available.channels,
               $6, $7, $8, $9
        FROM recipients AS r
        CROSS JOIN LATERAL (
            SELECT ARRAY(
                SELECT c.channel
                FROM unnest(ARRAY['sms', 'email', 'slack'], ARRAY[r.phone_number, r.email, r.slack_id])
                     AS c(channel, address)
                WHERE c.address IS NOT NULL AND ($5::text[] IS NULL OR c.channel = ANY($5::text[]))
            ) AS channels
        ) AS available
        WHERE r.name = $2 AND ($5::text[] IS NULL OR $5::text[] <@ available.channels)
        ON CONFLICT (client, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *
    ),
    new_deliveries AS (
        INSERT INTO deliveries (notification_id, channel) SELECT id, unnest(channels) FROM accepted
    ),
    new_outbox AS (
        INSERT INTO outbox (notification_id, next_attempt_at)
        SELECT id, now() + make_interval(secs => $10::float8) FROM accepted
    )
    SELECT * FROM accepted
"""

_BY_IDEMPOTENCY_KEY = "SELECT * FROM notifications WHERE client = $1 AND idempotency_key = $2"

_RECIPIENT_CHANNELS = """
    SELECT ARRAY(
        SELECT c.channel FROM unnest(ARRAY['sms', 'email', 'slack'], ARRAY[phone_number, email, slack_id])
                              AS c(channel, address)
        WHERE c.address IS NOT NULL
    ) AS channels
    FROM recipients WHERE name = $1
"""

_STATUS = text(
    """
    SELECT n.*,
           NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.notification_id = n.id) AS published,
           COALESCE((
               SELECT json_object_agg(d.channel, json_build_object(
                   'status', d.status, 'attempts', d.attempts, 'last_error', d.last_error,
                   'provider_message_id', d.provider_message_id, 'created_at', d.created_at,
                   'updated_at', d.updated_at, 'sent_at', d.sent_at))
               FROM deliveries AS d WHERE d.notification_id = n.id
           ), '{}'::json) AS deliveries
    FROM notifications AS n WHERE n.id = :id
    """
).bindparams(bindparam("id", type_=PG_UUID(as_uuid=True)))

# Claim due outbox rows for this relay: push their next attempt out by a lease, so another
# replica's relay skips them while this one publishes; SKIP LOCKED keeps relays from waiting on
# each other.
_CLAIM_DUE = text(
    """
    UPDATE outbox AS o
    SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease_seconds)
    FROM notifications AS n
    WHERE o.notification_id IN (
        SELECT notification_id FROM outbox WHERE next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED
    ) AND n.id = o.notification_id
    RETURNING o.attempts AS outbox_attempts, n.*
    """
).bindparams(bindparam("lease_seconds", type_=Float))

_DELETE_PUBLISHED = text("DELETE FROM outbox WHERE notification_id = ANY(:ids)").bindparams(
    bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))
)

_RESCHEDULE = text(
    """
    UPDATE outbox SET next_attempt_at = now() + make_interval(secs => :delay_seconds), last_error = :error
    WHERE notification_id = :id
    """
).bindparams(bindparam("id", type_=PG_UUID(as_uuid=True)), bindparam("delay_seconds", type_=Float))

_BACKLOG = text("SELECT count(*) FROM outbox")


class NotificationRepository:
    async def accept(
        self,
        connection: asyncpg.Connection,
        *,
        id: UUID,  # noqa: A002 - the column's name
        recipient: str,
        message: str,
        subject: str | None,
        requested: list[str] | None,
        client: str,
        client_serial: str,
        idempotency_key: str | None,
        request_hash: str | None,
        grace_seconds: float,
    ) -> Mapping[str, Any] | None:
        return await connection.fetchrow(
            _ACCEPT, id, recipient, message, subject, requested, client, client_serial, idempotency_key, request_hash, grace_seconds
        )

    async def by_idempotency_key(self, connection: asyncpg.Connection, *, client: str, idempotency_key: str) -> Mapping[str, Any] | None:
        return await connection.fetchrow(_BY_IDEMPOTENCY_KEY, client, idempotency_key)

    async def recipient_channels(self, connection: asyncpg.Connection, *, recipient: str) -> list[str] | None:
        row = await connection.fetchrow(_RECIPIENT_CHANNELS, recipient)
        return list(row["channels"]) if row else None

    async def status(self, connection: AsyncConnection, *, notification_id: UUID) -> RowMapping | None:
        return (await connection.execute(_STATUS, {"id": notification_id})).mappings().first()


class OutboxRepository:
    async def claim_due(self, connection: AsyncConnection, *, limit: int, lease_seconds: float) -> Sequence[RowMapping]:
        return (await connection.execute(_CLAIM_DUE, {"limit": limit, "lease_seconds": lease_seconds})).mappings().all()

    async def delete_published(self, connection: AsyncConnection, *, ids: Sequence[UUID]) -> None:
        if ids:
            await connection.execute(_DELETE_PUBLISHED, {"ids": list(ids)})

    async def reschedule(self, connection: AsyncConnection, *, notification_id: UUID, delay_seconds: float, error: str) -> None:
        await connection.execute(_RESCHEDULE, {"id": notification_id, "delay_seconds": delay_seconds, "error": error[:1000]})

    async def backlog(self, connection: AsyncConnection) -> int:
        return int((await connection.execute(_BACKLOG)).scalar_one())


def message_from_row(row: Mapping[str, Any]) -> NotificationMessage:
    """The SNS message for a stored notification (its recipient snapshot, not today's recipient)."""
    return NotificationMessage(
        notification_id=row["id"],
        recipient=RecipientSnapshot(
            name=row["recipient"], phone_number=row["phone_number"], email=row["email"], slack_id=row["slack_id"]
        ),
        message=row["message"],
        subject=row["subject"],
        channels=row["channels"],
        client=row["client"],
        created_at=row["created_at"],
    )
