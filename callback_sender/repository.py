"""Every query of the callback sender on ``callback_events`` and ``callbacks``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# Due events, at most $3 - (those this process already sends) per client and $2 in all, leased for
# $1 seconds (their due time pushed out: another replica's claim skips them, and if this one
# dies they are due again when the lease ends). SKIP LOCKED: replicas never wait on each other.
# Each comes with what sending it needs: its callback's URL and secrets.
_CLAIM = """
    UPDATE callback_events AS e
    SET attempts = e.attempts + 1, next_attempt_at = now() + make_interval(secs => $1::float8)
    FROM callbacks AS c
    WHERE e.id IN (
        SELECT picked.id
        FROM callbacks AS cb
        LEFT JOIN unnest($4::text[], $5::int[]) AS busy(client, in_flight) ON busy.client = cb.client
        CROSS JOIN LATERAL (
            SELECT ce.id, ce.next_attempt_at FROM callback_events AS ce
            WHERE ce.client = cb.client AND ce.given_up_at IS NULL AND ce.next_attempt_at <= now()
            ORDER BY ce.next_attempt_at
            LIMIT greatest($3::int - coalesce(busy.in_flight, 0), 0)
            FOR UPDATE SKIP LOCKED
        ) AS picked
        ORDER BY picked.next_attempt_at
        LIMIT $2
    ) AND c.client = e.client
    RETURNING e.id, e.client, e.type, e.data, e.occurred_at, e.attempts, c.url, c.secret,
              CASE WHEN c.previous_secret_expires_at > now() THEN c.previous_secret END AS previous_secret
"""

# One statement for a batch of outcomes: delivered events deleted, retried ones due again later,
# given-up ones kept with the reason; and each client's last success and last failure.
_RECORD = """
    WITH outcome AS (
        SELECT * FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::text[]) AS o(id, kind, delay_seconds, error)
    ),
    delivered AS (
        DELETE FROM callback_events AS e USING outcome AS o WHERE e.id = o.id AND o.kind = 'delivered'
    ),
    retried AS (
        UPDATE callback_events AS e
        SET next_attempt_at = now() + make_interval(secs => o.delay_seconds), last_error = o.error
        FROM outcome AS o WHERE e.id = o.id AND o.kind = 'retry'
    ),
    given_up AS (
        UPDATE callback_events AS e SET given_up_at = now(), last_error = o.error
        FROM outcome AS o WHERE e.id = o.id AND o.kind = 'give_up'
    )
    UPDATE callbacks AS c
    SET last_success_at = CASE WHEN s.succeeded THEN now() ELSE c.last_success_at END,
        last_failure = coalesce(s.failure, c.last_failure)
    FROM unnest($5::text[], $6::bool[], $7::jsonb[]) AS s(client, succeeded, failure)
    WHERE c.client = s.client
"""

_PENDING = """
    SELECT client, count(*) AS pending, extract(epoch FROM now() - min(occurred_at))::float8 AS oldest_seconds
    FROM callback_events WHERE given_up_at IS NULL GROUP BY client
"""

MAX_ERROR_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: uuid.UUID
    client: str
    type: str
    data: dict[str, Any]
    occurred_at: datetime
    attempts: int  # including this one
    url: str
    secrets: tuple[str, ...]  # the current secret, and the previous one while it still signs


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to record for one event: ``delivered``, ``retry`` (after ``delay_seconds``) or ``give_up``."""

    event: ClaimedEvent
    kind: str
    delay_seconds: float = 0.0
    error: str | None = None
    failure: Mapping[str, Any] | None = None  # the client's last_failure, when this attempt failed


class CallbackEventRepository:
    async def claim(
        self, connection: asyncpg.Connection, *, limit: int, per_client: int, busy: Mapping[str, int], lease_seconds: float
    ) -> list[ClaimedEvent]:
        rows = await connection.fetch(_CLAIM, lease_seconds, limit, per_client, list(busy), list(busy.values()))
        return [
            ClaimedEvent(
                id=row["id"],
                client=row["client"],
                type=row["type"],
                data=json.loads(row["data"]),
                occurred_at=row["occurred_at"],
                attempts=row["attempts"],
                url=row["url"],
                secrets=tuple(secret for secret in (row["secret"], row["previous_secret"]) if secret),
            )
            for row in rows
        ]

    async def record(self, connection: asyncpg.Connection, outcomes: Sequence[Outcome]) -> None:
        clients: dict[str, tuple[bool, str | None]] = {}
        for outcome in outcomes:
            succeeded, failure = clients.get(outcome.event.client, (False, None))
            succeeded = succeeded or outcome.kind == "delivered"
            if outcome.failure is not None:
                failure = json.dumps(outcome.failure, default=str)
            clients[outcome.event.client] = (succeeded, failure)
        await connection.execute(
            _RECORD,
            [outcome.event.id for outcome in outcomes],
            [outcome.kind for outcome in outcomes],
            [outcome.delay_seconds for outcome in outcomes],
            [(outcome.error or "")[:MAX_ERROR_LENGTH] or None for outcome in outcomes],
            list(clients),
            [succeeded for succeeded, _ in clients.values()],
            [failure for _, failure in clients.values()],
        )

    async def pending(self, connection: asyncpg.Connection) -> list[asyncpg.Record]:
        return await connection.fetch(_PENDING)
