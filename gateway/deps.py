"""Dependencies shared by the routes, as Annotated aliases so handlers read like prose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.errors import BadRequestError
from gateway.recipients.schemas import NAME_RULES, NAME_PATTERN


async def database_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # The engine is in autocommit mode: every write the gateway makes is a single statement,
    # atomic on its own, so an explicit BEGIN/COMMIT would only add two round trips.
    async with request.app.state.engine.connect() as connection:
        yield connection


async def recipient_name(
    name: Annotated[str, Path(description=f"The recipient's name: {NAME_RULES}.", max_length=128)],
) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadRequestError(f"invalid name: the recipient name must be {NAME_RULES}", field="name")
    return name


Connection = Annotated[AsyncConnection, Depends(database_connection)]
RecipientName = Annotated[str, Depends(recipient_name)]
