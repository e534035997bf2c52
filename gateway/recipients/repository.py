"""Every query on the recipients table."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from gateway.recipients.schemas import RecipientContacts, RecipientPublic
from shared.channels import CONTACT_FIELDS

_COLUMNS = ", ".join(("name", *CONTACT_FIELDS))

_UPSERT = f"""
    INSERT INTO recipients ({_COLUMNS}) VALUES ($1, {", ".join(f"${n}" for n in range(2, len(CONTACT_FIELDS) + 2))})
    ON CONFLICT (name) DO UPDATE SET {", ".join(f"{field} = excluded.{field}" for field in CONTACT_FIELDS)}, updated_at = now()
"""
_GET = f"SELECT {_COLUMNS} FROM recipients WHERE name = $1"
_DELETE = "DELETE FROM recipients WHERE name = $1"
_SET_PREFERENCES = "UPDATE recipients SET preferences = $2::jsonb, updated_at = now() WHERE name = $1"
_PREFERENCES = "SELECT preferences FROM recipients WHERE name = $1"
# A page of the listing, in name order: the first, or the one after the name ``$1``.
_LIST_FIRST = f"SELECT {_COLUMNS} FROM recipients ORDER BY name LIMIT $1"
_LIST_AFTER = f"SELECT {_COLUMNS} FROM recipients WHERE name > $2 ORDER BY name LIMIT $1"


class RecipientRepository:
    async def upsert(self, connection: asyncpg.Connection, *, name: str, contacts: RecipientContacts) -> None:
        await connection.execute(_UPSERT, name, *(getattr(contacts, field) for field in CONTACT_FIELDS))

    async def get(self, connection: asyncpg.Connection, *, name: str) -> RecipientPublic | None:
        row = await connection.fetchrow(_GET, name)
        return RecipientPublic(**row) if row else None

    async def delete(self, connection: asyncpg.Connection, *, name: str) -> None:
        await connection.execute(_DELETE, name)

    async def list_after(self, connection: asyncpg.Connection, *, after: str | None, limit: int) -> list[RecipientPublic]:
        rows = await (connection.fetch(_LIST_FIRST, limit) if after is None else connection.fetch(_LIST_AFTER, limit, after))
        return [RecipientPublic(**row) for row in rows]

    async def set_preferences(self, connection: asyncpg.Connection, *, name: str, preferences: dict[str, Any]) -> bool:
        """Replace the recipient's preferences; False when there is no such recipient."""
        return await connection.execute(_SET_PREFERENCES, name, json.dumps(preferences)) == "UPDATE 1"

    async def preferences(self, connection: asyncpg.Connection, *, name: str) -> tuple[bool, dict[str, Any] | None]:
        """(whether the recipient exists, its preferences document or None when never set)."""
        row = await connection.fetchrow(_PREFERENCES, name)
        if row is None:
            return False, None
        return True, json.loads(row["preferences"]) if row["preferences"] is not None else None
