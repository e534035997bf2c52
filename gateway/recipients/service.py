"""Recipient management."""

from __future__ import annotations

import asyncpg

from gateway.errors import BadRequestError, NotFoundError
from gateway.pagination import decode_cursor, encode_cursor
from gateway.recipients.repository import RecipientRepository
from gateway.recipients.preferences import public_preferences
from gateway.recipients.schemas import (
    NO_CONTACT_MESSAGE,
    RecipientContacts,
    RecipientPage,
    RecipientPreferences,
    RecipientPreferencesPublic,
    RecipientPublic,
)


class RecipientService:
    def __init__(self, repository: RecipientRepository | None = None) -> None:
        self._repository = repository or RecipientRepository()

    async def put(self, connection: asyncpg.Connection, *, name: str, contacts: RecipientContacts) -> None:
        if not contacts.has_contact:
            raise BadRequestError(NO_CONTACT_MESSAGE)
        await self._repository.upsert(connection, name=name, contacts=contacts)

    async def get(self, connection: asyncpg.Connection, *, name: str) -> RecipientPublic:
        recipient = await self._repository.get(connection, name=name)
        if recipient is None:
            raise NotFoundError(f"no recipient named {name!r}")
        return recipient

    async def delete(self, connection: asyncpg.Connection, *, name: str) -> None:
        # Its preferences go with it (they are a column of its row).
        await self._repository.delete(connection, name=name)

    async def put_preferences(self, connection: asyncpg.Connection, *, name: str, preferences: RecipientPreferences) -> None:
        if not await self._repository.set_preferences(connection, name=name, preferences=preferences.stored()):
            raise NotFoundError(f"no recipient named {name!r}")

    async def get_preferences(self, connection: asyncpg.Connection, *, name: str) -> RecipientPreferencesPublic:
        exists, document = await self._repository.preferences(connection, name=name)
        if not exists:
            raise NotFoundError(f"no recipient named {name!r}")
        return public_preferences(document)

    async def list_page(self, connection: asyncpg.Connection, *, cursor: str | None, limit: int) -> RecipientPage:
        after = decode_cursor(cursor) if cursor else None
        # One extra row tells whether there is a next page without a count query.
        rows = await self._repository.list_after(connection, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        return RecipientPage(items=page, next_cursor=encode_cursor(page[-1].name) if more else None)


recipient_service = RecipientService()

