"""stack/postgres.py: pgserver's Postgres started, stopped and adopted again on its data directory."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.settings import to_asyncpg_url
from stack.postgres import EmbeddedPostgres


class TestEmbeddedPostgres:
    async def test_starts_stops_and_restarts_on_the_same_data_dir(self, pgdata_parent: Path) -> None:
        postgres = EmbeddedPostgres(pgdata_parent / "pgdata")
        url = postgres.start()
        try:
            assert url.startswith("postgresql://") and "/notifications?" in url
            connection = await asyncpg.connect(url)
            await connection.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('survives a restart')")
            await connection.close()
        finally:
            postgres.stop()
        assert not postgres.running

        # A second handle on the same directory, as after Ctrl-C and `make up` again.
        restarted = EmbeddedPostgres(pgdata_parent / "pgdata")
        url = restarted.start()
        try:
            connection = await asyncpg.connect(url)
            assert await connection.fetchval("SELECT value FROM kept") == "survives a restart"
            await connection.close()

            # The services reach the database through SQLAlchemy's asyncpg dialect.
            engine = create_async_engine(to_asyncpg_url(url))
            async with engine.connect() as sqlalchemy_connection:
                database = (await sqlalchemy_connection.execute(text("SELECT current_database()"))).scalar()
            await engine.dispose()
            assert database == "notifications"
        finally:
            restarted.stop()
        assert not restarted.running
