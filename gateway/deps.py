"""Dependencies shared by the routes, as Annotated aliases so handlers read like prose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.datastructures import State

from gateway.errors import BadRequestError
from gateway.recipients.schemas import NAME_RULES, NAME_PATTERN
from shared.database import is_database_unavailable


async def database_connection(request: Request) -> AsyncIterator[AsyncConnection]:
    # The engine is in autocommit mode: every write the gateway makes is a single statement,
    # atomic on its own, so an explicit BEGIN/COMMIT would only add two round trips.
    async with request.app.state.engine.connect() as connection:
        yield connection


class PooledConnection:
    """``async with PooledConnection(app.state) as connection:`` a bare asyncpg connection from the
    app's pool (``shared.database.create_pool``), for the hot path.

    Not a dependency: a generator dependency costs more CPU than the checkout itself, and the
    route gives the connection back as soon as its statement is done, before the response goes out.
    """

    __slots__ = ("_pool", "_timeout", "_connection")

    def __init__(self, state: State) -> None:
        self._pool: asyncpg.Pool = state.database
        self._timeout: float = state.settings.database_pool_timeout_seconds

    async def __aenter__(self) -> asyncpg.Connection:
        # Not acquire(timeout=...): that wraps every checkout in a task of its own (wait_for).
        async with asyncio.timeout(self._timeout):
            self._connection = await self._pool.acquire()
        return self._connection

    async def __aexit__(self, _type: type[BaseException] | None, error: BaseException | None, _tb: TracebackType | None) -> None:
        if error is not None and is_database_unavailable(error):
            # After a Postgres restart a connection the server closed may not look closed yet:
            # drop it rather than hand it out again, and renew the others (closed by the same
            # restart, most likely) on their next checkout.
            self._connection.terminate()
            await self._pool.expire_connections()
        await self._pool.release(self._connection)


async def recipient_name(
    name: Annotated[str, Path(description=f"The recipient's name: {NAME_RULES}.", max_length=128)],
) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadRequestError(f"invalid name: the recipient name must be {NAME_RULES}", field="name")
    return name


Connection = Annotated[AsyncConnection, Depends(database_connection)]
RecipientName = Annotated[str, Depends(recipient_name)]
