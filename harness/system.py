"""The whole system started for tests and benchmarks: Postgres, an AWS emulator, WireMock, the services.

:func:`started_system` brings up, on a fresh database of the given Postgres server: an emulator
(moto, patched moto or LocalStack) and WireMock booting together, the prepared resources
(:func:`stack.prepare.prepare_system`), the gateway (optional) and whichever senders are asked for,
every one a real process; and stops all of it afterwards. The integration tests share one such
system per session (the ``system`` fixture); :meth:`System.reset` puts back what one test may
change for the next, cheaply.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.aws import EMULATORS, Aws
from harness.database import Database
from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.postgres import PostgresServer, run_in_thread
from harness.senders import Senders
from harness.slack import Slack
from shared.messages import NotificationMessage
from shared.channels import Channel
from stack.emulator import Emulator
from stack.network import free_port
from stack.prepare import prepare_system
from stack.processes import ComponentError
from stack.wiremock_server import WireMock


class EmulatorStartError(ComponentError):
    """The AWS emulator could not be installed or started (the message says why)."""


@dataclass
class System:
    postgres: PostgresServer
    database_url: str
    certificates: Certificates
    log_dir: Path
    emulator: Emulator
    wiremock: WireMock
    topology: dict[str, str]
    senders: Senders
    # The senders it runs (one each, default settings) until a test says otherwise.
    default_senders: tuple[Channel, ...] = ()
    gateway: GatewayProcess | None = None
    _cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def __post_init__(self) -> None:
        self.db = Database(self.database_url)
        self.aws = Aws(self.emulator)
        self.slack = Slack(self.wiremock)

    def start_gateway(self, *, name: str = "gateway", settings: dict[str, Any] | None = None, extra_env: dict[str, str] | None = None) -> GatewayProcess:
        """Another gateway on this system (stopped with it); see :func:`harness.gateway.start_gateway`."""
        gateway = start_gateway(
            certificates=self.certificates,
            database_url=self.database_url,
            aws_endpoint_url=self.emulator.endpoint_url,
            log_dir=self.log_dir,
            name=name,
            settings=settings,
            extra_env=extra_env,
        )
        self._cleanup.callback(gateway.stop)
        return gateway

    def accept(self, *messages: NotificationMessage) -> None:
        """Insert and publish, as the gateway does once it has accepted notifications (for the senders' tests)."""
        self.db.insert_notifications(list(messages))
        for message in messages:
            self.aws.publish(message)

    def reset(self) -> None:
        """What a test may have changed, back as it was: senders with custom settings stopped and
        the default ones running, the channel queues and DLQs emptied, WireMock's mappings back to
        the stack's files. The database and WireMock's journal stay (tests tell their own rows and
        requests apart by unique names and texts)."""
        self.senders.stop_custom()
        self.senders.ensure(*self.default_senders)
        self.aws.drain_all()
        self.wiremock.reset_mappings()


@contextlib.contextmanager
def started_system(
    *,
    postgres: PostgresServer,
    certificates: Certificates,
    log_dir: Path,
    emulator: str = "moto",
    wiremock_options: dict[str, Any] | None = None,
    gateway: bool = True,
    gateway_settings: dict[str, Any] | None = None,
    senders: tuple[Channel, ...] = (),
    sender_defaults: dict[str, str] | None = None,
    email_regions: tuple[str, ...] = (),
) -> Iterator[System]:
    """The system on a fresh database, ready; everything it started is stopped afterwards.

    ``email_regions``: SES regions prepared besides the emulator's own (see
    :func:`stack.prepare.prepare_system`), for email senders with ``PROVIDERS=ses,ses:<region>``.

    Raises :class:`EmulatorStartError` when the emulator cannot be started (LocalStack needs an
    installation of its own), so that tests can say so instead of skipping.
    """
    with contextlib.ExitStack() as cleanup:
        database_url = cleanup.enter_context(postgres.fresh_database())
        aws = EMULATORS[emulator](free_port(), log_path=log_dir / f"{emulator}.log")
        wiremock = WireMock(free_port(), log_path=log_dir / "wiremock.log", **(wiremock_options or {}))
        # Both boot at once: together they take as long as the slower one, not the sum.
        with _emulator_failure(emulator):
            aws.start(wait=False)
        cleanup.callback(aws.stop)
        wiremock.start(wait=False)
        cleanup.callback(wiremock.stop)
        with _emulator_failure(emulator):
            aws.wait_until_ready()
        wiremock.wait_until_ready()
        topology = run_in_thread(
            prepare_system(
                database_url=database_url, aws_endpoint_url=aws.endpoint_url, certs_dir=certificates.directory, email_regions=email_regions
            )
        )
        processes = Senders(
            database_url=database_url,
            aws_endpoint_url=aws.endpoint_url,
            slack_api_url=wiremock.slack_api_url,
            log_dir=log_dir,
            defaults=sender_defaults,
        )
        cleanup.callback(processes.stop_all)
        system = cleanup.enter_context(
            _closing(System(postgres, database_url, certificates, log_dir, aws, wiremock, topology, processes, senders))
        )
        if gateway:
            system.gateway = system.start_gateway(settings=gateway_settings)
        processes.ensure(*senders)
        yield system


@contextlib.contextmanager
def _closing(system: System) -> Iterator[System]:
    with system._cleanup:
        yield system


@contextlib.contextmanager
def _emulator_failure(emulator: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - whatever it is, it is the reason
        raise EmulatorStartError(f"{emulator} could not be started here: {type(exc).__name__}: {exc}") from exc
