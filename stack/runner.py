"""``python -m stack up``: the whole system in the foreground, on embedded defaults.

Postgres, the AWS emulator and the Slack API are started here unless the services' settings point
at existing ones (DATABASE_URL, AWS_ENDPOINT_URL, SLACK_API_URL, in the environment or ``.env``).
Then the database, topology, SES identity and certificates are prepared (:mod:`stack.prepare`),
and the gateway, the senders and the callback sender run as child processes, each with the environment its own
settings class reads. ``STACK_REPLICAS="sms=2 slack=3"`` runs that many replicas of a channel's sender,
each on an ops port of its own (the first on the sender's, replica n 100 x (n - 1) above it) with a log of
its own; the ones beyond the first are written for Prometheus to find (``monitoring/prometheus.yml``'s
file_sd_configs). Ctrl-C or SIGTERM stops everything in reverse order; if a child dies, the rest is
stopped too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mtls.paths import PkiPaths, resolve_directory
from sender_email.settings import EmailSenderSettings
from sender_slack.settings import SlackSenderSettings
from shared.callback_targets import CallbackTargetSettings
from shared.channels import CHANNEL_NAMES
from shared.settings import ServiceSettings, environment_for, environment_name
from stack.moto import MotoServer
from stack.network import port_holder, port_in_use, wait_for_http
from stack.postgres import EmbeddedPostgres
from stack.prepare import prepare_system
from stack.processes import LOCAL_DIR, LOGS_DIR, REPO_ROOT, ComponentError, ManagedProcess, ShutdownSignals, StopRequested
from stack.services import CALLBACK_SENDER, GATEWAY, SENDERS, Instance, instances
from stack.wiremock_server import WireMock

PGDATA_DIR = LOCAL_DIR / "pgdata"
# The replicas beyond each sender's first, as Prometheus file service discovery reads them.
PROMETHEUS_REPLICAS_FILE = LOCAL_DIR / "prometheus" / "sender_replicas.json"
MAX_REPLICAS = 10
READINESS_TIMEOUT_SECONDS = 60.0
SUPERVISION_INTERVAL_SECONDS = 0.5

DEMO_RECIPIENT = "demo"
DEMO_CONTACTS = '{"phone_number": "+14155552671", "email": "demo@example.com", "slack_id": "U0123456789"}'
DEMO_NOTIFICATION = '{"recipient": "demo", "subject": "Hello", "message": "Hello from the local stack"}'

# What else often listens on these ports, for the message when one is taken.
OTHER_PORT_HOLDERS = {
    9000: "another local tool (php-fpm, MinIO and Portainer default to 9000)",
    9001: "MinIO's console",
    7000: "on macOS the AirPlay Receiver (System Settings > General > AirDrop & Handoff)",
}


class StackSettings(BaseSettings):
    """The runner's own: where its emulators listen (the runner's own test moves them, so that it
    never collides with a developer's running stack); the defaults are the original system's."""

    model_config = SettingsConfigDict(env_prefix="STACK_", env_file=".env", extra="ignore")

    moto_port: int = 4566
    wiremock_port: int = 7000
    # Replicas per channel's sender: "sms=2 slack=3" (spaces or commas between); one unless named.
    replicas: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)

    @field_validator("replicas", mode="before")
    @classmethod
    def _channel_counts(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        counts: dict[str, int] = {}
        for item in value.replace(",", " ").split():
            channel, _, count = item.partition("=")
            channel = channel.strip().lower()
            if channel not in CHANNEL_NAMES or not count.strip().isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
                raise ValueError(
                    f"STACK_REPLICAS: {item!r} is not CHANNEL=COUNT with CHANNEL one of {', '.join(CHANNEL_NAMES)} "
                    f"and COUNT 1 to {MAX_REPLICAS} (e.g. STACK_REPLICAS=\"sms=2 slack=3\")"
                )
            counts[channel] = int(count)
        return counts


class Component(Protocol):
    @property
    def running(self) -> bool: ...

    @property
    def returncode(self) -> int | None: ...

    def log_tail(self, lines: int = 50) -> str: ...


@dataclass
class Running:
    """A started component, how to stop it, and where its log is."""

    name: str
    component: Component
    stop: Callable[[], object]
    log_path: Path


class LocalSystem:
    """The whole system on this machine: what it starts, in which order, and how it stops it."""

    def __init__(self, *, with_senders: bool) -> None:
        self.stack = StackSettings()
        self.instances = instances([GATEWAY, *((*SENDERS, CALLBACK_SENDER) if with_senders else ())], self.stack.replicas)
        self.started: list[Running] = []
        self.certs_dir = resolve_directory()
        given = ServiceSettings()
        slack = SlackSenderSettings()
        self.use_embedded_postgres = "database_url" not in given.model_fields_set or not given.database_url
        # AWS_ENDPOINT_URL set but empty means the real AWS: whether it is set is what counts.
        self.use_moto = "aws_endpoint_url" not in given.model_fields_set
        self.use_wiremock = "slack_api_url" not in slack.model_fields_set or not slack.slack_api_url
        self.database_url = given.database_url
        self.aws_endpoint_url = given.aws_endpoint_url
        self.slack_api_url = slack.slack_api_url

    # -- start-up ------------------------------------------------------------------------------

    def port_conflicts(self) -> list[str]:
        # port -> (what it is for, who usually holds it, advice)
        ports = {
            GATEWAY.settings.port: (
                "the gateway's HTTPS port",
                "another gateway (an earlier `make up` still running, or `python -m gateway`)",
                "",
            )
        }
        for instance in self.instances:
            variable = environment_name(instance.service.settings_cls, "ops_port")
            role = f"{instance.name}'s ops port, {variable}" + (f" + {instance.ops_port - instance.service.settings.ops_port}" if instance.replica > 1 else "")
            ports[instance.ops_port] = (role, instance.service.role, "")
        if self.use_moto:
            ports[self.stack.moto_port] = (
                "moto, the AWS emulator",
                "LocalStack or a moto server (an earlier `make up`?); set AWS_ENDPOINT_URL to use it instead",
                "",
            )
        if self.use_wiremock:
            ports[self.stack.wiremock_port] = (
                "WireMock, the local Slack API",
                "another WireMock (an earlier `make up`?)",
                "; set SLACK_API_URL to use another Slack API",
            )
        return [_describe_conflict(port, *what) for port, what in ports.items() if port_in_use(port)]

    def start(self) -> None:
        # The emulators boot in the background while Postgres starts: together they take as long
        # as the slowest of them (the JVM), not the sum.
        moto = wiremock = None
        if self.use_moto:
            _say(f"starting moto (AWS emulator) on port {self.stack.moto_port} ...")
            moto = MotoServer(self.stack.moto_port, log_path=LOGS_DIR / "moto.log")
            self.started.append(Running("moto", moto, moto.stop, moto.log_path))
            moto.start(wait=False)
        if self.use_wiremock:
            _say(f"starting WireMock (Slack API) on port {self.stack.wiremock_port} ...")
            wiremock = WireMock(self.stack.wiremock_port, log_path=LOGS_DIR / "wiremock.log")
            self.started.append(Running("wiremock", wiremock, wiremock.stop, wiremock.log_path))
            wiremock.start(wait=False)
        if self.use_embedded_postgres:
            postgres = EmbeddedPostgres(PGDATA_DIR)
            _say(f"starting Postgres (embedded, data in {_display(PGDATA_DIR)}) ...")
            # Stopped last: first in the list, because shutdown walks it backwards.
            self.started.insert(0, Running("postgres", postgres, postgres.stop, postgres.log_path))
            self.database_url = postgres.start()
        if moto is not None:
            moto.wait_until_ready()
            self.aws_endpoint_url = moto.endpoint_url
        if wiremock is not None:
            wiremock.wait_until_ready()
            self.slack_api_url = wiremock.slack_api_url

        _say("preparing the database, topology, SES identity and certificates ...")
        email = EmailSenderSettings()
        asyncio.run(
            prepare_system(
                database_url=self.database_url,
                aws_endpoint_url=self.aws_endpoint_url,
                certs_dir=self.certs_dir,
                email_from_address=email.email_from_address,
                email_regions=email.ses_regions,
            )
        )

        processes: list[tuple[Instance, ManagedProcess]] = []
        for instance in self.instances:
            process = ManagedProcess(
                instance.name,
                [sys.executable, "-m", instance.service.module],
                env=self.service_environment(instance),
                cwd=REPO_ROOT,
                log_path=LOGS_DIR / f"{instance.name}.log",
            )
            self.started.append(Running(instance.name, process, process.stop, process.log_path))
            process.start()
            processes.append((instance, process))
        _say("started " + ", ".join(instance.name for instance, _ in processes))
        self.write_prometheus_replicas()
        for instance, process in processes:
            try:
                wait_for_http(f"{_ops_url(instance)}/readyz", timeout=READINESS_TIMEOUT_SECONDS, process=process)
            except TimeoutError as exc:
                raise ComponentError(
                    f"{instance.name} did not become ready: {exc}\nlast lines of {_display(process.log_path)}:\n"
                    f"{process.log_tail()}"
                ) from exc

    def write_prometheus_replicas(self) -> None:
        """The senders' replicas beyond the first, for ``monitoring/prometheus.yml`` (which lists
        the first ones itself): rewritten on every start, so an earlier run's are forgotten."""
        groups = [
            {"targets": [_ops_url(instance).removeprefix("http://")], "labels": {"service": instance.service.module}}
            for instance in self.instances
            if instance.replica > 1
        ]
        PROMETHEUS_REPLICAS_FILE.parent.mkdir(parents=True, exist_ok=True)
        PROMETHEUS_REPLICAS_FILE.write_text(json.dumps(groups, indent=2) + "\n")

    def service_environment(self, instance: Instance) -> dict[str, str]:
        """What a service's process gets on top of this process's environment: where the
        dependencies this run started are, its ops port, and (the gateway) its certificates and the CRL."""
        service = instance.service
        values: dict[str, Any] = {"database_url": self.database_url, "aws_endpoint_url": self.aws_endpoint_url, "ops_port": instance.ops_port}
        if service is GATEWAY:
            settings = GATEWAY.settings
            values.update(
                tls_cert=settings.tls_cert,
                tls_key=settings.tls_key,
                tls_ca=settings.tls_ca,
                tls_crl=settings.tls_crl or PkiPaths.in_directory(self.certs_dir).crl,
            )
        if service.settings_cls is SlackSenderSettings:
            values["slack_api_url"] = self.slack_api_url
        if issubclass(service.settings_cls, CallbackTargetSettings):
            # Receivers on this machine (http://localhost...) may be tried out, unless said otherwise.
            given = CallbackTargetSettings()
            values["callbacks_allow_localhost"] = given.callbacks_allow_localhost if "callbacks_allow_localhost" in given.model_fields_set else True
        return environment_for(service.settings_cls, **values)

    # -- running -------------------------------------------------------------------------------

    def banner(self, seconds: float) -> str:
        logs = {running.name: running.log_path for running in self.started}
        rows: list[tuple[str, str, Path | None]] = [
            (
                "postgres",
                self.database_url if self.use_embedded_postgres else f"{self.database_url} (DATABASE_URL)",
                logs.get("postgres"),
            ),
            (
                "AWS (moto)" if self.use_moto else "AWS",
                f"{self.aws_endpoint_url}  sent: /moto-api/data.json" if self.use_moto
                else f"{self.aws_endpoint_url or 'real AWS'} (AWS_ENDPOINT_URL)",
                logs.get("moto"),
            ),
            (
                "Slack (WireMock)" if self.use_wiremock else "Slack API",
                f"{self.slack_api_url}  requests: /__admin/requests" if self.use_wiremock
                else f"{self.slack_api_url} (SLACK_API_URL)",
                logs.get("wiremock"),
            ),
        ]
        for instance in self.instances:
            where = f"ops: {_ops_url(instance)}"
            if instance.service is GATEWAY:
                where = f"https://localhost:{GATEWAY.settings.port} (mTLS)  {where}"
            rows.append((instance.name, where, logs[instance.name]))

        lines = [f"Local stack ready in {seconds:.1f} s. Ctrl-C stops everything.", ""]
        for name, where, log_path in rows:
            log = f"  log: {_display(log_path)}" if log_path else ""
            lines.append(f"  {name:<17} {where}{log}")
        lines += ["", "Send a notification (from the repository root):", "", demo_curl_command(self.certs_dir), ""]
        return "\n".join(lines)

    def first_dead_component(self) -> Running | None:
        return next((running for running in self.started if not running.component.running), None)

    # -- shutdown ------------------------------------------------------------------------------

    def stop(self) -> None:
        for running in reversed(self.started):
            _say(f"stopping {running.name} ...")
            try:
                running.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others whatever happened
                _say(f"could not stop {running.name}: {exc}")
        self.started.clear()


def demo_curl_command(certs_dir: Path) -> str:
    """Two curl calls, joined with &&: create the demo recipient, then notify it on every channel."""
    base_url = f"https://localhost:{GATEWAY.settings.port}"
    files = PkiPaths.in_directory(certs_dir)
    tls = " ".join(
        f"--{option} {shlex.quote(_display(path))}"
        for option, path in (("cacert", files.ca_cert), ("cert", files.client_cert), ("key", files.client_key))
    )
    json_header = "-H 'Content-Type: application/json'"
    return (
        f"curl -sS --fail-with-body {tls} \\\n"
        f"  -X PUT {base_url}/recipients/{DEMO_RECIPIENT} {json_header} \\\n"
        f"  -d {shlex.quote(DEMO_CONTACTS)} \\\n"
        f"&& curl -sS --fail-with-body {tls} \\\n"
        f"  -X POST {base_url}/notifications {json_header} \\\n"
        f"  -d {shlex.quote(DEMO_NOTIFICATION)}; echo"
    )


def _ops_url(instance: Instance) -> str:
    settings = instance.service.settings
    host = "127.0.0.1" if settings.ops_host in ("0.0.0.0", "::", "") else settings.ops_host
    return f"http://{host}:{instance.ops_port}"


def _describe_conflict(port: int, role: str, usual: str, advice: str) -> str:
    holder = port_holder(port)
    held_by = f" by {holder}" if holder else ""
    other = f", or {OTHER_PORT_HOLDERS[port]}" if port in OTHER_PORT_HOLDERS else ""
    return f"port {port} ({role}) is already in use{held_by}; usually that is {usual}{other}{advice}."


def _display(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter, still copy-pasteable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def up(*, with_senders: bool = True) -> int:
    try:
        system = LocalSystem(with_senders=with_senders)
        conflicts = system.port_conflicts()
    except ValidationError as exc:  # a setting the services would refuse at start-up
        print(f"[stack] invalid settings, nothing was started:\n{exc}", file=sys.stderr)
        return 1
    if conflicts:
        for conflict in conflicts:
            print(f"[stack] {conflict}", file=sys.stderr)
        print("[stack] nothing was started; free the port(s) above and run it again.", file=sys.stderr)
        return 1

    started_at = time.monotonic()
    with ShutdownSignals("[stack]") as signals:
        try:
            system.start()
            print("\n" + system.banner(time.monotonic() - started_at), flush=True)
            return _supervise(system)
        except StopRequested as stop:
            _say(f"{stop.signal_name} received, stopping")
            return 0
        except (ComponentError, OSError, TimeoutError) as exc:
            print(f"[stack] start-up failed: {exc}", file=sys.stderr, flush=True)
            return 1
        except Exception as exc:  # noqa: BLE001 - e.g. a migration error: report it, then clean up
            print(f"[stack] start-up failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            if signals.received is None:
                signals.received = "shutdown"  # from now on signals are only noted
            system.stop()
            _say("stopped")


def _supervise(system: LocalSystem) -> int:
    """Watch the components until a signal interrupts; returns 1 when one of them dies."""
    pause = threading.Event()  # never set: a sleep that signals interrupt
    while True:
        pause.wait(SUPERVISION_INTERVAL_SECONDS)
        dead = system.first_dead_component()
        if dead is None:
            continue
        code = dead.component.returncode
        print(
            f"\n[stack] {dead.name} exited unexpectedly"
            + (f" with code {code}" if code is not None else "")
            + f"; last lines of {_display(dead.log_path)}:\n"
            + dead.component.log_tail(40),
            file=sys.stderr,
            flush=True,
        )
        system.started.remove(dead)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="run the whole system in the foreground until Ctrl-C")
    up_parser.add_argument("--no-senders", action="store_true", help="run the gateway and infrastructure only")
    arguments = parser.parse_args(argv)
    if arguments.command == "up":
        return up(with_senders=not arguments.no_senders)
    parser.error(f"unknown command {arguments.command!r}")
    return 2
