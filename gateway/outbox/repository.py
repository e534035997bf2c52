"""Every query on the outbox table (the rows themselves are written by the statements whose state
change they publish, e.g. the accept in ``gateway/notifications/repository.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

# Claim due rows for this relay: push their next attempt out by a lease, so another replica's
# relay skips them while this one publishes; SKIP LOCKED keeps relays from waiting on each other.
# A scheduled row's deliveries are released in the same statement (``scheduled`` -> ``pending``,
# before SNS has the message, so a sender never finds them scheduled): from here on the
# notification can no longer be cancelled. Outbox rows are locked before deliveries, as the
# cancel locks them. Each row comes with its notification's columns, from which the SNS message
# is built.
_CLAIM_DUE = """
    WITH claimed AS (
        UPDATE outbox AS o
        SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2::float8)
        WHERE o.id IN (
            SELECT id FROM outbox WHERE next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        RETURNING o.id, o.attempts, o.channels, o.notification_id
    ),
    released AS (
        UPDATE deliveries AS d SET status = 'pending', updated_at = now()
        FROM claimed AS c
        WHERE d.notification_id = c.notification_id AND d.channel = ANY (c.channels) AND d.status = 'scheduled'
    )
    SELECT c.id AS outbox_id, c.attempts AS outbox_attempts, c.channels AS publication_channels, n.*
    FROM claimed AS c JOIN notifications AS n ON n.id = c.notification_id
"""

_DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY($1::bigint[])"

_RESCHEDULE = """
    UPDATE outbox AS o
    SET next_attempt_at = now() + make_interval(secs => r.delay_seconds), last_error = r.error
    FROM unnest($1::bigint[], $2::float8[], $3::text[]) AS r(id, delay_seconds, error)
    WHERE o.id = r.id
"""

# The backlog (owed to SNS now: not scheduled rows still waiting for their time), the scheduled
# rows waiting, and in how many seconds the next row is due (NULL: the outbox is empty).
_STATE = """
    SELECT count(*) FILTER (WHERE release_at IS NULL OR release_at <= now()) AS backlog,
           count(*) FILTER (WHERE release_at > now()) AS scheduled,
           extract(epoch FROM min(next_attempt_at) - now())::float8 AS next_due_in
    FROM outbox
"""

MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class OutboxState:
    backlog: int
    scheduled: int
    next_due_in: float | None  # seconds; negative when a row is overdue; None when empty


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

    async def state(self, connection: asyncpg.Connection) -> OutboxState:
        row = await connection.fetchrow(_STATE)
        return OutboxState(int(row["backlog"]), int(row["scheduled"]), row["next_due_in"])
