"""Every query on jobs (their notifications are stored and read by ``gateway/notifications/repository.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_INSERT = """
    INSERT INTO jobs (id, client, name, template, template_version, rows, send_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    RETURNING *
"""

_GET = "SELECT * FROM jobs WHERE id = $1 AND client = $2"

_PAGE = """
    SELECT * FROM jobs WHERE client = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3
"""

_MARK_CANCELLED = "UPDATE jobs SET cancelled_at = COALESCE(cancelled_at, now()) WHERE id = $1 RETURNING *"

# Per job, channel and delivery status: how many deliveries.
_COUNTS = """
    SELECT n.job_id, d.channel, d.status, count(*) AS deliveries
    FROM notifications AS n JOIN deliveries AS d ON d.notification_id = n.id
    WHERE n.job_id = ANY($1::uuid[])
    GROUP BY n.job_id, d.channel, d.status
"""

# The suppressed ones among (channel, address) pairs: for rows that give addresses directly
# (a registered recipient's are read with the recipient, by ``plan_inputs``).
_SUPPRESSED = """
    SELECT s.channel, s.address, s.reason
    FROM suppressions AS s
    WHERE (s.channel, s.address) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""


class JobRepository:
    async def insert(
        self,
        connection: asyncpg.Connection,
        *,
        id: UUID,
        client: str,
        name: str,
        template: str,
        template_version: int,
        rows: int,
        send_at: datetime | None,
    ) -> asyncpg.Record:
        return await connection.fetchrow(_INSERT, id, client, name, template, template_version, rows, send_at)

    async def get(self, connection: asyncpg.Connection, *, job_id: UUID, client: str) -> asyncpg.Record | None:
        """The job, when ``client`` created it."""
        return await connection.fetchrow(_GET, job_id, client)

    async def page(self, connection: asyncpg.Connection, *, client: str, after: UUID | None, limit: int) -> list[asyncpg.Record]:
        return await connection.fetch(_PAGE, client, after, limit)

    async def mark_cancelled(self, connection: asyncpg.Connection, *, job_id: UUID) -> asyncpg.Record:
        return await connection.fetchrow(_MARK_CANCELLED, job_id)

    async def counts(self, connection: asyncpg.Connection, job_ids: Sequence[UUID]) -> dict[UUID, dict[str, dict[str, int]]]:
        """Per job: deliveries by channel and status."""
        counts: dict[UUID, dict[str, dict[str, int]]] = {job_id: {} for job_id in job_ids}
        for row in await connection.fetch(_COUNTS, list(job_ids)):
            counts[row["job_id"]].setdefault(row["channel"], {})[row["status"]] = row["deliveries"]
        return counts

    async def suppressed(self, connection: asyncpg.Connection, addresses: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """Which of the (channel, address) pairs are suppressed, and why."""
        if not addresses:
            return {}
        rows = await connection.fetch(_SUPPRESSED, [channel for channel, _ in addresses], [address for _, address in addresses])
        return {(row["channel"], row["address"]): row["reason"] for row in rows}
