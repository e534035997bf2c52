"""Every query on the recipients table."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.recipients.schemas import RecipientContacts, RecipientPublic
from shared.tables import recipients


class RecipientRepository:
    async def upsert(self, connection: AsyncConnection, *, name: str, contacts: RecipientContacts) -> None:
        values = {"phone_number": contacts.phone_number, "email": contacts.email, "slack_id": contacts.slack_id}
        statement = insert(recipients).values(name=name, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[recipients.c.name], set_={**values, "updated_at": func.now()}
        )
        await connection.execute(statement)

    async def get(self, connection: AsyncConnection, *, name: str) -> RecipientPublic | None:
        row = (await connection.execute(select(*_PUBLIC_COLUMNS).where(recipients.c.name == name))).first()
        return RecipientPublic(**row._mapping) if row else None

    async def delete(self, connection: AsyncConnection, *, name: str) -> None:
        await connection.execute(delete(recipients).where(recipients.c.name == name))

    async def list_after(self, connection: AsyncConnection, *, after: str | None, limit: int) -> list[RecipientPublic]:
        query = select(*_PUBLIC_COLUMNS).order_by(recipients.c.name).limit(limit)
        if after is not None:
            query = query.where(recipients.c.name > after)
        return [RecipientPublic(**row._mapping) for row in await connection.execute(query)]


_PUBLIC_COLUMNS = (recipients.c.name, recipients.c.phone_number, recipients.c.email, recipients.c.slack_id)
