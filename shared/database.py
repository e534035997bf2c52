"""The async SQLAlchemy engine every service uses, and the errors that mean "database down"."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import ServiceSettings

# Errors that mean the database cannot be reached right now (as opposed to a bad query).
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    PoolTimeoutError,
    InterfaceError,
    OperationalError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, Exception):
        return is_database_unavailable(exc.orig) or isinstance(exc.orig.__cause__, DATABASE_UNAVAILABLE_ERRORS)
    return isinstance(exc, DATABASE_UNAVAILABLE_ERRORS)


def create_engine(settings: ServiceSettings) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_timeout=5,
        # A connection that sat idle across a Postgres restart is dead; pre-ping only on checkout
        # would cost a round trip per request, so recycle instead and let errors invalidate.
        pool_recycle=300,
        connect_args={"timeout": 5, "command_timeout": 10},
    )


async def check_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
