"""Recipient management."""

from __future__ import annotations

import base64
import binascii

import asyncpg

from gateway.errors import BadRequestError, NotFoundError
from gateway.recipients.repository import RecipientRepository
from gateway.recipients.schemas import NAME_PATTERN, NO_CONTACT_MESSAGE, RecipientContacts, RecipientPage, RecipientPublic


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
        await self._repository.delete(connection, name=name)

    async def list_page(self, connection: asyncpg.Connection, *, cursor: str | None, limit: int) -> RecipientPage:
        after = decode_cursor(cursor) if cursor else None
        # One extra row tells whether there is a next page without a count query.
        rows = await self._repository.list_after(connection, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        return RecipientPage(items=page, next_cursor=encode_cursor(page[-1].name) if more else None)


# A cursor is the last name of a page in unpadded base64url; names are at most 128 characters of
# at most 4 UTF-8 bytes each.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"


def encode_cursor(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        name = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = None
    # A cursor is a recipient name we handed out; anything else is not one of ours.
    if name is None or not NAME_PATTERN.fullmatch(name):
        raise BadRequestError("cursor is not one this API returned", field="cursor")
    return name


recipient_service = RecipientService()


CURSOR_MAX_LENGTH = len(encode_cursor("\U0010ffff" * 128))
