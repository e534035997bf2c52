"""Every query on notifications, their deliveries and the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID as PG_UUID
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Float

from shared.database import DATABASE_UNAVAILABLE_ERRORS
from shared.messages import NotificationMessage, RecipientSnapshot

# One statement, one round trip, atomic on its own: take the recipient's contact data as a
# snapshot, insert the notification, one pending delivery per channel and the outbox row. It
# inserts nothing when the recipient is unknown, a requested channel is not one the recipient
# has, or the client already used the idempotency key; the caller then finds out which.
# It runs on the asyncpg connection itself: this is the hot path, and SQLAlchemy's statement
# handling cost more CPU than the statement.
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

_BY_IDEMPOTENCY_KEY = text(
    "SELECT * FROM notifications WHERE client = :client AND idempotency_key = :idempotency_key"
)

_RECIPIENT_CHANNELS = text(
    """
    SELECT ARRAY(
        SELECT c.channel FROM unnest(ARRAY['sms', 'email', 'slack'], ARRAY[phone_number, email, slack_id])
                              AS c(channel, address)
        WHERE c.address IS NOT NULL
    ) AS channels
    FROM recipients WHERE name = :recipient
    """
)

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
        connection: AsyncConnection,
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
        driver = (await connection.get_raw_connection()).driver_connection
        try:
            return await driver.fetchrow(
                _ACCEPT, id, recipient, message, subject, requested, client, client_serial, idempotency_key, request_hash, grace_seconds
            )
        except DATABASE_UNAVAILABLE_ERRORS as exc:
            # SQLAlchemy never saw this statement, so it cannot tell that the connection died
            # under it: unless told, the pool hands the dead connection out again and again, and
            # after a Postgres restart every accept fails with "connection is closed" for good.
            # Like SQLAlchemy on a disconnect of its own, drop the whole pool: its other
            # connections were most likely closed by the same restart.
            await connection.invalidate(exc)
            await connection.engine.dispose(close=False)
            raise

    async def by_idempotency_key(self, connection: AsyncConnection, *, client: str, idempotency_key: str) -> RowMapping | None:
        parameters = {"client": client, "idempotency_key": idempotency_key}
        return (await connection.execute(_BY_IDEMPOTENCY_KEY, parameters)).mappings().first()

    async def recipient_channels(self, connection: AsyncConnection, *, recipient: str) -> list[str] | None:
        row = (await connection.execute(_RECIPIENT_CHANNELS, {"recipient": recipient})).first()
        return list(row.channels) if row else None

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
