"""Every query on the recipients table."""

from __future__ import annotations

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
