"""Session fixtures for the integration tests: thin wrappers over :mod:`harness`.

Postgres is DATABASE_URL's server when that is set (CI points it at the machine's Postgres),
else an embedded one; every database the tests use is a fresh one of their own. ``gateway`` is a
gateway alone on the session's moto (``queues`` reads what it publishes); ``system`` is the whole
system, shared by every module that asks for it: a moto and a WireMock of its own, the gateway and
the three senders, stopped as soon as the last test that asks for it is done (not at the end of
the session: its idle long polls would run beside the tests that follow). A test that changes the
system's state calls ``system.reset()`` first (or uses ``stack``, which does).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.aws import QueueReader
from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.postgres import PostgresServer, postgres_server as started_postgres_server
from harness.system import System, started_system
from mtls import pki
from shared.topology import Channel
from stack.moto import MotoServer
from stack.network import free_port
from stack.prepare import prepare_system


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with started_postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def moto(log_dir: Path) -> Iterator[MotoServer]:
    with MotoServer(free_port(), log_path=log_dir / "moto.log") as server:
        yield server


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
    pki.issue_client_certificate(directory, "auditor", ("audit",))
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
    process.stop()


@pytest.fixture(scope="session")
def queues(prepared: dict[str, str], moto: MotoServer) -> QueueReader:
    return QueueReader(moto.endpoint_url)


# The nodeid of the last test that uses ``system``, and how to stop the system early.
LAST_SYSTEM_USER = pytest.StashKey[str]()
STOP_SYSTEM = pytest.StashKey[Callable[[], None]]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    users = [item.nodeid for item in items if "system" in getattr(item, "fixturenames", ())]
    if users:
        config.stash[LAST_SYSTEM_USER] = users[-1]


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if item.config.stash.get(LAST_SYSTEM_USER, None) == item.nodeid and (stop := item.config.stash.get(STOP_SYSTEM, None)):
        stop()


@pytest.fixture(scope="session")
def system(
    request: pytest.FixtureRequest, postgres_server: PostgresServer, certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """The whole system, started once for every test that asks for it."""
    with contextlib.ExitStack() as running:
        started = running.enter_context(
            started_system(
                postgres=postgres_server,
                certificates=certificates,
                log_dir=tmp_path_factory.mktemp("system-logs"),
                senders=(Channel.SMS, Channel.EMAIL, Channel.SLACK),
            )
        )
        request.config.stash[STOP_SYSTEM] = running.close
        yield started


@pytest.fixture(scope="module")
def sender_stack(postgres_server: PostgresServer, certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A module's own system without a gateway, whose senders its tests start and stop at will
    (``stack.senders.only(...)``): the senders' tests publish as the gateway would."""
    with started_system(
        postgres=postgres_server, certificates=certificates, log_dir=tmp_path_factory.mktemp("sender-logs"), gateway=False
    ) as started:
        yield started


@pytest.fixture
def stack(sender_stack: System) -> Iterator[System]:
    """The module's system, reset at the start of each test; custom senders stopped after it."""
    sender_stack.reset()
    yield sender_stack
    sender_stack.senders.stop_custom()
