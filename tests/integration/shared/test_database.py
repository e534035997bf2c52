"""shared/database.py against a real Postgres: checkout with a timeout, and connections the
server closed dropped rather than handed out again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.database import Database, is_database_unavailable
from shared.settings import postgres_dsn
from harness.postgres import PostgresServer


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[Database]:
    url = postgres_server.create_database()
    async with Database(postgres_dsn(url), size=4, acquire_timeout=0.5) as opened:
        yield opened
    postgres_server.drop_database(url)


class TestDatabase:
    async def test_a_checkout_waits_at_most_the_timeout(self, database: Database) -> None:
        await database.check()
        held = [database.connection() for _ in range(database.size)]
        for checkout in held:
            await checkout.__aenter__()
        try:
            started = asyncio.get_running_loop().time()
            with pytest.raises(TimeoutError) as raised:
                async with database.connection():
                    pass
            assert 0.4 < asyncio.get_running_loop().time() - started < 2
            assert is_database_unavailable(raised.value)
        finally:
            for checkout in held:
                await checkout.__aexit__(None, None, None)
        await database.check()

    async def test_connections_the_server_closed_are_dropped(self, database: Database) -> None:
        async def backend() -> int:
            async with database.connection() as connection:
                return await connection.fetchval("SELECT pg_backend_pid()")

        pids = set(await asyncio.gather(*(backend() for _ in range(database.size))))
        async with Database(database.dsn, size=1) as admin, admin.connection() as connection:
            await connection.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(pids))
            # pg_terminate_backend only signals: wait until the backends have exited (and the
            # event loop has run meanwhile), so the pool's connections really are closed by the
            # server when they are checked out, as after a restart, on a busy machine too.
            async with asyncio.timeout(10):
                while await connection.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)):
                    await asyncio.sleep(0.05)
        failures = 0
        for _ in range(database.size + 1):
            try:
                assert await backend() not in pids
                break
            except Exception as exc:  # noqa: BLE001 - what a dead connection says, once
                assert is_database_unavailable(exc), exc
                failures += 1
        else:
            pytest.fail("every checkout after the restart failed")
        assert failures <= 1, "a dead connection was handed out again"
        # The others were renewed too: none of the old backends is used any more.
        assert not set(await asyncio.gather(*(backend() for _ in range(database.size)))) & pids
