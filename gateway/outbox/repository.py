"""Every query on the outbox table (the rows themselves are written by the statements whose state
change they publish, e.g. the accept in ``gateway/notifications/repository.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

# Claim due rows for this relay: push their next attempt out by a lease, so another replica's
# relay skips them while this one publishes; SKIP LOCKED keeps relays from waiting on each other.
# Each row comes with its notification's columns, from which the SNS message is built.
_CLAIM_DUE = """
    UPDATE outbox AS o
    SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2::float8)
    FROM notifications AS n
    WHERE o.id IN (
        SELECT id FROM outbox WHERE next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
    ) AND n.id = o.notification_id
    RETURNING o.id AS outbox_id, o.attempts AS outbox_attempts, o.channels AS publication_channels, n.*
"""

_DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

_RESCHEDULE = """
    UPDATE outbox AS o
    SET next_attempt_at = now() + make_interval(secs => r.delay_seconds), last_error = r.error
    FROM unnest($1::bigint[], $2::float8[], $3::text[]) AS r(id, delay_seconds, error)
    WHERE o.id = r.id
"""

_BACKLOG = "SELECT count(*) FROM outbox"

MAX_ERROR_LENGTH = 1000


class OutboxRepository:
    async def claim_due(self, connection: asyncpg.Connection, *, limit: int, lease_seconds: float) -> list[Any]:
        return await connection.fetch(_CLAIM_DUE, limit, lease_seconds)

    async def delete_published(self, connection: asyncpg.Connection, *, ids: Sequence[int]) -> None:
        if ids:
            await connection.execute(_DELETE_PUBLISHED, list(ids))

    async def reschedule(self, connection: asyncpg.Connection, *, retries: Sequence[tuple[int, float, str]]) -> None:
        """Push out the next attempt of each (outbox id, delay in seconds, reason)."""
        if retries:
            ids, delays, errors = zip(*retries, strict=True)
            await connection.execute(_RESCHEDULE, list(ids), list(delays), [error[:MAX_ERROR_LENGTH] for error in errors])

    async def backlog(self, connection: asyncpg.Connection) -> int:
        return int(await connection.fetchval(_BACKLOG))
