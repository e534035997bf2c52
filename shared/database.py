"""The async SQLAlchemy engine every service uses, and the errors that mean "database down"."""

from __future__ import annotations

import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import ServiceSettings, to_asyncpg_url

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
    # What a connection the server closed while it sat idle says when it is used before asyncpg
    # has noticed the close ("cannot switch to state 12; another operation is in progress").
    asyncpg.exceptions.InternalClientError,
)


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, Exception):
        return is_database_unavailable(exc.orig) or isinstance(exc.orig.__cause__, DATABASE_UNAVAILABLE_ERRORS)
    return isinstance(exc, DATABASE_UNAVAILABLE_ERRORS)


def create_engine(
    settings: ServiceSettings,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_timeout: float = 5.0,
    autocommit: bool = False,
) -> AsyncEngine:
    """The service's engine. ``max_overflow`` defaults to ``pool_size``; a hot path that should not
    churn connections passes 0 (overflow connections are closed when returned, so a busy service
    would reconnect, and re-prepare its statements, again and again)."""
    size = pool_size or settings.database_pool_size
    options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    return create_async_engine(
        settings.sqlalchemy_url,
        pool_size=size,
        max_overflow=size if max_overflow is None else max_overflow,
        pool_timeout=pool_timeout,
        # A connection that sat idle across a Postgres restart is dead; pre-ping only on checkout
        # would cost a round trip per request, so recycle instead and let errors invalidate.
        pool_recycle=300,
        connect_args={"timeout": 5, "command_timeout": 10},
        **options,
    )


async def create_pool(settings: ServiceSettings, *, size: int | None = None) -> asyncpg.Pool:
    """A bare asyncpg pool, for a hot path where SQLAlchemy's checkout and statement handling
    cost more CPU than the statement itself. Like the engine's pool it connects on first use,
    and a connection the server closed is replaced on its next checkout."""
    return await asyncpg.create_pool(
        to_asyncpg_url(settings.database_url).replace("postgresql+asyncpg://", "postgresql://", 1),
        min_size=0,
        max_size=size or settings.database_pool_size,
        max_inactive_connection_lifetime=300,  # as the engine's pool_recycle
        timeout=5,
        command_timeout=10,
        # The default reset on release costs a round trip per checkout. These connections only
        # run single autocommit statements that leave no session state behind: nothing to reset.
        reset=_nothing_to_reset,
    )


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    pass


async def check_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
