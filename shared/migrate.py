"""Run the database migrations: ``python -m shared.migrate [upgrade|downgrade REV|current]``.

The database itself is created when missing, so a fresh Postgres needs no manual step.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from shared.settings import ServiceSettings, to_asyncpg_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a % in a password.
    config.set_main_option("sqlalchemy.url", to_asyncpg_url(database_url).replace("%", "%%"))
    return config


async def create_database_if_missing(database_url: str) -> bool:
    """Create the URL's database when it does not exist. Returns True when it created it."""
    import asyncpg

    url = make_url(to_asyncpg_url(database_url))
    name = url.database or "postgres"
    maintenance = url.set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(maintenance.render_as_string(hide_password=False))
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await connection.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await connection.close()


def upgrade(database_url: str, revision: str = "head") -> None:
    asyncio.run(create_database_if_missing(database_url))
    command.upgrade(alembic_config(database_url), revision)


def main(argv: list[str]) -> int:
    database_url = ServiceSettings().database_url
    action = argv[0] if argv else "upgrade"
    if action == "upgrade":
        upgrade(database_url, argv[1] if len(argv) > 1 else "head")
    elif action == "downgrade" and len(argv) == 2:
        command.downgrade(alembic_config(database_url), argv[1])
    elif action == "current":
        command.current(alembic_config(database_url), verbose=True)
    else:
        print("usage: python -m shared.migrate [upgrade [REV] | downgrade REV | current]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
