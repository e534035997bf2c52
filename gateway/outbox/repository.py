"""Every query on the outbox table (the rows themselves are written by the statements whose state
change they publish, e.g. the accept in ``gateway/notifications/repository.py``, and by
``notifyctl reconcile`` for deliveries whose message was lost)."""

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

# Delete what SNS took, and note the time on its deliveries not yet final (``notifyctl reconcile``
# tells a lost message by it; a ``sending`` one may hold a lease that expired). SKIP LOCKED: a row
# a sender is claiming or settling right now has a sign of life already (its claim), and waiting
# for it could deadlock against the sender's statements, which lock rows in another order.
_DELETE_PUBLISHED = """
    WITH published AS (
        DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING notification_id, channels
    ), waiting AS (
        SELECT d.notification_id, d.channel
        FROM deliveries AS d JOIN published AS p ON p.notification_id = d.notification_id AND d.channel = ANY(p.channels)
        WHERE d.status IN ('pending', 'sending')
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE deliveries AS d SET published_at = now()
    FROM waiting WHERE d.notification_id = waiting.notification_id AND d.channel = waiting.channel
"""

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

# Deliveries not final whose message is lost (notifyctl/reconcile.py): no outbox row owes them,
# and no sign of life (accepted or last changed, last published, a claim's lease) for $2 seconds,
# longer than a message stays invisible (the queues' visibility timeout) or a claim holds
# (leases are extended while a send runs).
_LOST = """
    SELECT d.notification_id, d.channel, d.status, greatest(d.updated_at, d.published_at, d.claimed_until) AS last_seen
    FROM deliveries AS d
    WHERE d.status IN ('pending', 'sending') AND d.channel = ANY($1::text[])
      AND greatest(d.updated_at, d.published_at, d.claimed_until) < now() - make_interval(secs => $2::float8)
      AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.notification_id = d.notification_id AND d.channel = ANY(o.channels))
"""

_LOST_SUMMARY = f"""
    SELECT channel, status, count(*) AS deliveries, min(last_seen) AS oldest_last_seen
    FROM ({_LOST}) AS lost GROUP BY channel, status ORDER BY channel, status
"""

# One outbox row per notification, addressed to its lost channels, claimed for this process as
# the relay claims (the next attempt a lease away): it publishes them itself, and if it dies, a
# gateway's relay does once the lease ends. Returned as claim_due returns rows.
_OWE_LOST = f"""
    WITH lost AS (
        SELECT notification_id, array_agg(channel ORDER BY channel) AS channels
        FROM ({_LOST} ORDER BY d.notification_id LIMIT $3) AS lost GROUP BY notification_id
    ), owed AS (
        INSERT INTO outbox (notification_id, channels, attempts, next_attempt_at)
        SELECT notification_id, channels, 1, now() + make_interval(secs => $4::float8) FROM lost
        RETURNING id, attempts, channels, notification_id
    )
    SELECT o.id AS outbox_id, o.attempts AS outbox_attempts, o.channels AS publication_channels, n.*
    FROM owed AS o JOIN notifications AS n ON n.id = o.notification_id
"""

# Two reconciles at once would each owe the same deliveries again (harmless, but twice the work).
_RECONCILE_LOCK = "SELECT pg_advisory_xact_lock(hashtext('notifyctl reconcile'))"
# A scan of the deliveries not final: longer than the services' statement timeout allows.
RECONCILE_STATEMENT_TIMEOUT_SECONDS = 300.0

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
    async def lost_summary(self, connection: asyncpg.Connection, *, channels: Sequence[str], older_than_seconds: float) -> list[Any]:
        """Deliveries whose message is lost, by channel and status: (channel, status, deliveries, oldest_last_seen)."""
        return await connection.fetch(
            _LOST_SUMMARY, list(channels), older_than_seconds, timeout=RECONCILE_STATEMENT_TIMEOUT_SECONDS
        )

    async def owe_lost(
        self, connection: asyncpg.Connection, *, channels: Sequence[str], older_than_seconds: float, limit: int, lease_seconds: float
    ) -> list[Any]:
        """Write outbox rows for up to ``limit`` lost deliveries, claimed for ``lease_seconds``
        (the rows as ``claim_due`` returns them)."""
        async with connection.transaction():
            await connection.execute(_RECONCILE_LOCK)
            return await connection.fetch(
                _OWE_LOST, list(channels), older_than_seconds, limit, lease_seconds, timeout=RECONCILE_STATEMENT_TIMEOUT_SECONDS
            )
