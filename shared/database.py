"""The database access layer every service uses: asyncpg pools, and what "database down" means.

One mechanism for every process and every statement (the gateway's routes and its outbox, the
senders' claims and settles, notifyctl):

- ``Database``: one asyncpg pool. ``async with database.connection() as connection:`` checks a
  connection out, waiting at most ``acquire_timeout`` (then ``TimeoutError``, which counts as
  "database unavailable"), and gives it back on exit. Cheap enough for the hot path: one small
  object per checkout, no task (``Pool.acquire(timeout=...)`` would wrap every checkout in
  ``wait_for``), no reset round trip on release (see ``_nothing_to_reset``).
- A connection that fails with a "database unavailable" error is terminated, not handed out
  again, and the pool's other connections are renewed on their next checkout: after a Postgres
  restart a connection the server closed may not look closed yet, and its neighbours were most
  likely closed by the same restart.
- ``is_database_unavailable(exc)``: the one test of whether an error means "the database cannot
  be reached right now" (as opposed to a bad query), whoever raised it: asyncpg, the OS, a
  timeout, or any library that wraps them (it follows ``__cause__``, ``__context__`` and the
  ``orig`` attribute SQLAlchemy's wrappers carry, without importing SQLAlchemy).
- ``database.check()``: the readiness check (``SELECT 1``).

Statements run in autocommit (asyncpg's default): each is atomic on its own, and asyncpg
prepares it once per connection and reuses it from its statement cache. Code that needs several
statements in one transaction opens one on the connection (``connection.transaction()``), which
rolls back on error. SQLAlchemy stays for the migrations (``shared/migrate.py``) and the table
definitions they use (``shared/tables.py``); no service process imports it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import asyncpg

from shared.settings import ServiceSettings, postgres_dsn

# Errors that mean the database cannot be reached right now (as opposed to a bad query).
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,  # a checkout that waited too long, a connect or a statement that timed out
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # What a connection the server closed while it sat idle says when it is used before asyncpg
    # has noticed the close ("cannot switch to state 12; another operation is in progress").
    asyncpg.exceptions.InternalClientError,
)

CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 10.0
# Idle connections are closed after this long, so one that sat across a Postgres restart is
# renewed rather than found dead by the next request.
MAX_IDLE_SECONDS = 300.0


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it wraps) means the database cannot be reached right now."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, DATABASE_UNAVAILABLE_ERRORS) or getattr(error, "connection_invalidated", False) is True:
            return True
        for wrapped in (getattr(error, "orig", None), error.__cause__, error.__context__):
            if isinstance(wrapped, BaseException):
                pending.append(wrapped)
    return False


class Database:
    """One asyncpg pool and the way every statement reaches it (see the module docstring)."""

    def __init__(self, dsn: str, *, size: int, acquire_timeout: float = 5.0) -> None:
        self.dsn, self.size, self.acquire_timeout = dsn, size, acquire_timeout
        self._pool: asyncpg.Pool | None = None

    @classmethod
    def for_service(cls, settings: ServiceSettings, *, size: int | None = None, acquire_timeout: float = 5.0) -> Database:
        return cls(postgres_dsn(settings.database_url), size=size or settings.database_pool_size, acquire_timeout=acquire_timeout)

    async def open(self) -> Database:
        """Create the pool. It connects on first use, so a database that is down does not stop
        a service from starting (its readiness check says so instead)."""
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=0,
            max_size=self.size,
            max_inactive_connection_lifetime=MAX_IDLE_SECONDS,
            timeout=CONNECT_TIMEOUT_SECONDS,
            command_timeout=COMMAND_TIMEOUT_SECONDS,
            reset=_nothing_to_reset,
        )
        return self

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def connection(self) -> Checkout:
        """``async with database.connection() as connection:`` a pooled connection."""
        if self._pool is None:
            raise RuntimeError("Database.open() first")
        return Checkout(self._pool, self.acquire_timeout)

    async def check(self) -> None:
        """Readiness: a connection answers."""
        async with self.connection() as connection:
            await connection.fetchval("SELECT 1")


class Checkout:
    """One checkout of a pooled connection (``Database.connection()``)."""

    __slots__ = ("_pool", "_timeout", "_connection")

    def __init__(self, pool: asyncpg.Pool, timeout: float) -> None:
        self._pool, self._timeout = pool, timeout

    async def __aenter__(self) -> asyncpg.Connection:
        async with asyncio.timeout(self._timeout):
            self._connection = await self._pool.acquire()
        return self._connection

    async def __aexit__(self, _type: type[BaseException] | None, error: BaseException | None, _tb: TracebackType | None) -> None:
        if error is not None and is_database_unavailable(error):
            self._connection.terminate()
            await self._pool.expire_connections()
        await self._pool.release(self._connection)


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """Releasing a connection runs no reset statement (asyncpg's default costs a round trip per
    checkout): the connections run autocommit statements that leave no session state behind,
    and asyncpg itself still rolls back a transaction left open."""
