"""Session fixtures for the integration tests: the real stack, started once.

Postgres is DATABASE_URL's server when that is set (CI points it at the machine's Postgres),
else an embedded one; each session works in a fresh database of its own. The AWS emulator is a
moto server on a free port; the gateway runs as its own process with mutual TLS.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mtls import pki
from stack.components import EmbeddedPostgres, MotoServer, free_port, prepare_system
from tests.support.harness import Certificates, GatewayProcess, PostgresServer, QueueReader, start_gateway


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    if os.environ.get("DATABASE_URL"):
        yield PostgresServer(os.environ["DATABASE_URL"])
        return
    # Not under pytest's temp dir: that is private to root (0700), and pgserver, run as root,
    # runs Postgres as its own unprivileged user, which must be able to reach the data dir.
    parent = Path(tempfile.mkdtemp(prefix="notify-test-pg-"))
    parent.chmod(0o755)
    embedded = EmbeddedPostgres(parent / "data")
    url = embedded.start()
    yield PostgresServer(url)
    embedded.stop()
    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def moto(log_dir: Path) -> Iterator[MotoServer]:
    server = MotoServer(free_port(), log_path=log_dir / "moto.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Our CA's certificates, plus the awkward ones the refusal tests need."""
    directory = tmp_path_factory.mktemp("certs")
    pki.init_pki(directory)
    now = datetime.now(UTC)
    pki.issue_client_certificate(
        directory, "expired", pki.ROLES, not_valid_before=now - timedelta(days=30), not_valid_after=now - timedelta(days=1)
    )
    pki.issue_client_certificate(
        directory, "not-yet-valid", pki.ROLES, not_valid_before=now + timedelta(days=1), not_valid_after=now + timedelta(days=30)
    )
    pki.issue_client_certificate(directory, "acme-billing", ("notifications",))
    foreign = directory / "foreign"
    foreign.mkdir()
    pki.create_ca(foreign, common_name="Somebody Else's CA")
    pki.issue_client_certificate(foreign, "client", pki.ROLES)
    return Certificates(directory)


@pytest.fixture(scope="session")
def prepared(database_url: str, moto: MotoServer, certificates: Certificates) -> dict[str, str]:
    return asyncio.run(
        prepare_system(database_url=database_url, aws_endpoint_url=moto.endpoint_url, certs_dir=certificates.directory)
    )


@pytest.fixture(scope="session")
def gateway(prepared: dict[str, str], certificates: Certificates, database_url: str, moto: MotoServer, log_dir: Path) -> Iterator[GatewayProcess]:
    process = start_gateway(
        certificates=certificates, database_url=database_url, aws_endpoint_url=moto.endpoint_url, log_dir=log_dir
    )
    yield process
    process.process.stop()


@pytest.fixture(scope="session")
def queues(prepared: dict[str, str], moto: MotoServer) -> QueueReader:
    return QueueReader(moto.endpoint_url)
