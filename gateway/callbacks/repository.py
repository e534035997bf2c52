"""Every query on the callbacks table (and, for DELETE, the events owed to a callback)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg

# A new callback gets the secret given; a changed one keeps its own (its receiver verifies with it).
_UPSERT = """
    INSERT INTO callbacks (client, url, events, secret) VALUES ($1, $2, $3, $4)
    ON CONFLICT (client) DO UPDATE SET url = excluded.url, events = excluded.events, updated_at = now()
    RETURNING url, events, secret
"""
_GET = """
    SELECT c.url, c.events, c.last_success_at, c.last_failure,
           (SELECT count(*) FROM callback_events AS e WHERE e.client = c.client AND e.given_up_at IS NULL) AS pending
    FROM callbacks AS c WHERE c.client = $1
"""
# The callback and the events still owed to it, at once: nobody is left to send them to.
_DELETE = """
    WITH removed AS (DELETE FROM callbacks WHERE client = $1 RETURNING client)
    DELETE FROM callback_events WHERE client IN (SELECT client FROM removed)
"""
# The previous secret keeps signing for $3 seconds beside the new one.
_ROTATE = """
    UPDATE callbacks
    SET previous_secret = secret, previous_secret_expires_at = now() + make_interval(secs => $3::float8),
        secret = $2, updated_at = now()
    WHERE client = $1
    RETURNING url, events, secret
"""


class CallbackRepository:
    async def upsert(self, connection: asyncpg.Connection, *, client: str, url: str, events: Sequence[str], secret: str) -> asyncpg.Record:
        return await connection.fetchrow(_UPSERT, client, url, list(events), secret)

    async def get(self, connection: asyncpg.Connection, *, client: str) -> dict[str, Any] | None:
        row = await connection.fetchrow(_GET, client)
        if row is None:
            return None
        return {**row, "last_failure": json.loads(row["last_failure"]) if row["last_failure"] else None}

    async def delete(self, connection: asyncpg.Connection, *, client: str) -> None:
        await connection.execute(_DELETE, client)

    async def rotate(self, connection: asyncpg.Connection, *, client: str, secret: str, grace_seconds: float) -> asyncpg.Record | None:
        return await connection.fetchrow(_ROTATE, client, secret, grace_seconds)
