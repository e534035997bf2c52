"""The suppression list: listing and lifting suppressions (receipts add them: shared/receipts.py)."""

from __future__ import annotations

import asyncpg

from gateway.errors import NotFoundError
from gateway.pagination import decode_cursor_text, encode_cursor, foreign_cursor
from gateway.suppressions.repository import SuppressionRepository
from gateway.suppressions.schemas import SuppressionPage
from shared.channels import CHANNEL_NAMES, Channel

# A cursor holds the page's last key as "<channel> <address>"; an address has no NUL (the
# routes refuse one), a channel no space.
_KEY_SEPARATOR = " "


class SuppressionService:
    def __init__(self, repository: SuppressionRepository | None = None) -> None:
        self._repository = repository or SuppressionRepository()

    async def list_page(
        self, connection: asyncpg.Connection, *, channel: Channel | None, cursor: str | None, limit: int
    ) -> SuppressionPage:
        after = _decode(cursor) if cursor else None
        # One extra row tells whether there is a next page without a count query.
        rows = await self._repository.list_after(
            connection, channel=channel.value if channel else None, after=after, limit=limit + 1
        )
        page, more = rows[:limit], len(rows) > limit
        last = page[-1] if more else None
        return SuppressionPage(
            items=page, next_cursor=encode_cursor(f"{last.channel.value}{_KEY_SEPARATOR}{last.address}") if last else None
        )

    async def lift(self, connection: asyncpg.Connection, *, channel: Channel, address: str) -> None:
        if not await self._repository.delete(connection, channel=channel.value, address=address):
            raise NotFoundError(f"{channel.value} address {address!r} is not suppressed")


def _decode(cursor: str) -> tuple[str, str]:
    channel, separator, address = decode_cursor_text(cursor).partition(_KEY_SEPARATOR)
    if not separator or channel not in CHANNEL_NAMES or "\x00" in address:
        raise foreign_cursor()
    return channel, address


suppression_service = SuppressionService()
