"""Every query the gateway makes on the suppressions table (receipts write it: shared/receipts.py;
the accept reads it with its recipients: gateway/notifications/repository.py)."""

from __future__ import annotations

import asyncpg

from gateway.suppressions.schemas import SuppressionPublic

# A page in (channel, address) order, of one channel ($1) or all (NULL), after the key ($2, $3) or from the start.
_LIST = """
    SELECT channel, address, reason, notification_id, created_at FROM suppressions
    WHERE ($1::text IS NULL OR channel = $1) AND ($2::text IS NULL OR (channel, address) > ($2::text, $3::text))
    ORDER BY channel, address
    LIMIT $4
"""
_DELETE = "DELETE FROM suppressions WHERE channel = $1 AND address = $2"


class SuppressionRepository:
    async def list_after(
        self, connection: asyncpg.Connection, *, channel: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[SuppressionPublic]:
        after_channel, after_address = after or (None, None)
        rows = await connection.fetch(_LIST, channel, after_channel, after_address, limit)
        return [SuppressionPublic(**row) for row in rows]

    async def delete(self, connection: asyncpg.Connection, *, channel: str, address: str) -> bool:
        """Lift a suppression; False when the address was not suppressed."""
        return await connection.execute(_DELETE, channel, address) == "DELETE 1"
