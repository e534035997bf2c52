"""``python -m stack up``: the whole system in the foreground, on embedded defaults.

Postgres, the AWS emulator and the Slack API are started here unless the environment points at
existing ones (DATABASE_URL, AWS_ENDPOINT_URL, SLACK_API_URL). Then the database, topology, SES
identity and certificates are prepared, and the gateway and the senders run as child processes.
Ctrl-C or SIGTERM stops everything in reverse order; if a child dies, the rest is stopped too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from stack.components import (
    LOCAL_DIR,
    LOGS_DIR,
    REPO_ROOT,
    ComponentError,
    EmbeddedPostgres,
    ManagedProcess,
    MotoServer,
    WireMock,
    port_in_use,
    prepare_system,
    wait_for_http,
)

# The emulators' ports and the certificates' folder can be moved (the runner's own test does, so
# that it never collides with a developer's running stack); the defaults are the original system's.
MOTO_PORT = int(os.environ.get("STACK_MOTO_PORT") or 4566)
WIREMOCK_PORT = int(os.environ.get("STACK_WIREMOCK_PORT") or 7000)
CERTS_DIR = Path(os.environ.get("MTLS_DIR") or REPO_ROOT / "mtls").resolve()
PGDATA_DIR = LOCAL_DIR / "pgdata"
DEFAULT_EMAIL_FROM_ADDRESS = "sender@notifications.com"
# Only WireMock accepts it; a real Slack workspace needs the user's own SLACK_BOT_TOKEN.
LOCAL_SLACK_BOT_TOKEN = "xoxb-local-stack"
READINESS_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
SUPERVISION_INTERVAL_SECONDS = 0.5

DEMO_RECIPIENT = "demo"
DEMO_CONTACTS = '{"phone_number": "+14155552671", "email": "demo@example.com", "slack_id": "U0123456789"}'
DEMO_NOTIFICATION = '{"recipient": "demo", "subject": "Hello", "message": "Hello from the local stack"}'

# What usually holds each port, for the message when one is taken.
USUAL_PORT_HOLDERS = {
    8443: "another gateway (an earlier `make up` still running, or `python -m gateway`)",
    9000: "an earlier `make up`, or another local tool (php-fpm, MinIO and Portainer default to 9000)",
    9001: "an earlier `make up` (the SMS sender), or MinIO's console",
    9002: "an earlier `make up` (the email sender)",
    9003: "an earlier `make up` (the Slack sender)",
    MOTO_PORT: "LocalStack or a moto server (an earlier `make up`?); set AWS_ENDPOINT_URL to use it instead",
    WIREMOCK_PORT: (
        "another WireMock (an earlier `make up`?), or on macOS the AirPlay Receiver "
        "(System Settings > General > AirDrop & Handoff); set SLACK_API_URL to use another Slack API"
    ),
}


@dataclass(frozen=True)
class Service:
    """One of our own services, run as ``python -m <module>``."""

    module: str
    ops_port_variable: str
    default_ops_port: int

    @property
    def ops_port(self) -> int:
        return int(os.environ.get(self.ops_port_variable) or self.default_ops_port)

    @property
    def available(self) -> bool:
        # The sender packages exist as empty folders before their code lands; only a package
        # with a __main__ can be run.
        return (REPO_ROOT / self.module / "__main__.py").is_file()


GATEWAY = Service("gateway", "GATEWAY_OPS_PORT", 9000)
SENDERS = (
    Service("sender_sms", "SMS_SENDER_OPS_PORT", 9001),
    Service("sender_email", "EMAIL_SENDER_OPS_PORT", 9002),
    Service("sender_slack", "SLACK_SENDER_OPS_PORT", 9003),
)


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


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


def gateway_port() -> int:
    return int(os.environ.get("GATEWAY_PORT") or 8443)


class LocalStack:
    def __init__(self, *, with_senders: bool) -> None:
        self.services = [GATEWAY, *(SENDERS if with_senders else ())]
        self.started: list[Running] = []
        self.skipped: list[Service] = [service for service in self.services if not service.available]
        self.use_embedded_postgres = not os.environ.get("DATABASE_URL")
        # AWS_ENDPOINT_URL set but empty means the real AWS, so test presence, not truthiness.
        self.use_moto = "AWS_ENDPOINT_URL" not in os.environ
        self.use_wiremock = not os.environ.get("SLACK_API_URL")
        self.database_url = os.environ.get("DATABASE_URL", "")
        self.aws_endpoint_url: str | None = os.environ.get("AWS_ENDPOINT_URL") or None
        self.slack_api_url = os.environ.get("SLACK_API_URL", "")

    # -- start-up ------------------------------------------------------------------------------

    def port_conflicts(self) -> list[str]:
        ports = {gateway_port(): "the gateway's HTTPS port"} if GATEWAY.available else {}
        for service in self.services:
            if service.available:
                ports[service.ops_port] = f"{service.module}'s ops port, {service.ops_port_variable}"
        if self.use_moto:
            ports[MOTO_PORT] = "moto, the AWS emulator"
        if self.use_wiremock:
            ports[WIREMOCK_PORT] = "WireMock, the local Slack API"
        return [_describe_conflict(port, role) for port, role in ports.items() if port_in_use(port)]

    def start(self) -> None:
        # The emulators boot in the background while Postgres starts: together they take as long
        # as the slowest of them (the JVM), not the sum.
        moto = wiremock = None
        if self.use_moto:
            _say(f"starting moto (AWS emulator) on port {MOTO_PORT} ...")
            moto = MotoServer(MOTO_PORT, log_path=LOGS_DIR / "moto.log")
            self.started.append(Running("moto", moto, moto.stop, moto.log_path))
            moto.start(wait=False)
        if self.use_wiremock:
            _say(f"starting WireMock (Slack API) on port {WIREMOCK_PORT} ...")
            wiremock = WireMock(WIREMOCK_PORT, log_path=LOGS_DIR / "wiremock.log")
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
        asyncio.run(
            prepare_system(
                database_url=self.database_url,
                aws_endpoint_url=self.aws_endpoint_url,
                certs_dir=CERTS_DIR,
                email_from_address=os.environ.get("EMAIL_FROM_ADDRESS") or DEFAULT_EMAIL_FROM_ADDRESS,
            )
        )

        processes: list[tuple[Service, ManagedProcess]] = []
        for service in self.services:
            if not service.available:
                continue
            process = ManagedProcess(
                service.module,
                [sys.executable, "-m", service.module],
                env=self.service_environment(),
                cwd=REPO_ROOT,
                log_path=LOGS_DIR / f"{service.module}.log",
            )
            self.started.append(Running(service.module, process, process.stop, process.log_path))
            process.start()
            processes.append((service, process))
        _say("started " + (", ".join(service.module for service, _ in processes) or "no services"))
        if self.skipped:
            _say("not started, no __main__.py yet: " + ", ".join(service.module for service in self.skipped))
        for service, process in processes:
            url = f"http://127.0.0.1:{service.ops_port}/readyz"
            try:
                wait_for_http(url, timeout=READINESS_TIMEOUT_SECONDS, process=process)
            except TimeoutError as exc:
                raise ComponentError(
                    f"{service.module} did not become ready: {exc}\nlast lines of {_display(process.log_path)}:\n"
                    f"{process.log_tail()}"
                ) from exc

    def service_environment(self) -> dict[str, str]:
        """What the gateway and the senders get on top of this process's environment."""
        environment = {
            "DATABASE_URL": self.database_url,
            "AWS_ENDPOINT_URL": self.aws_endpoint_url or "",
            "SLACK_API_URL": self.slack_api_url,
        }
        certificates = {
            "GATEWAY_TLS_CERT": CERTS_DIR / "server.crt.pem",
            "GATEWAY_TLS_KEY": CERTS_DIR / "server.key.pem",
            "GATEWAY_TLS_CA": CERTS_DIR / "ca.crt.pem",
            "GATEWAY_TLS_CRL": CERTS_DIR / "crl.pem",
        }
        for name, path in certificates.items():
            environment[name] = os.environ.get(name) or str(path)
        if self.use_wiremock:
            environment["SLACK_BOT_TOKEN"] = os.environ.get("SLACK_BOT_TOKEN") or LOCAL_SLACK_BOT_TOKEN
        return environment

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
        for service in self.services:
            if service.module not in logs:
                rows.append((service.module, f"not started: {service.module}/__main__.py does not exist yet", None))
                continue
            where = f"ops: http://127.0.0.1:{service.ops_port}"
            if service is GATEWAY:
                where = f"https://localhost:{gateway_port()} (mTLS)  {where}"
            rows.append((service.module, where, logs[service.module]))

        lines = [f"Local stack ready in {seconds:.1f} s. Ctrl-C stops everything.", ""]
        for name, where, log_path in rows:
            log = f"  log: {_display(log_path)}" if log_path else ""
            lines.append(f"  {name:<17} {where}{log}")
        lines += ["", "Send a notification (from the repository root):", "", demo_curl_command(), ""]
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


def demo_curl_command() -> str:
    """Two curl calls, joined with &&: create the demo recipient, then notify it on every channel."""
    base_url = f"https://localhost:{gateway_port()}"
    tls = " ".join(
        f"--{option} {shlex.quote(_display(CERTS_DIR / name))}"
        for option, name in (("cacert", "ca.crt.pem"), ("cert", "client.crt.pem"), ("key", "client.key.pem"))
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


def _describe_conflict(port: int, role: str) -> str:
    holder = _port_holder(port)
    usual = USUAL_PORT_HOLDERS.get(port, "another program")
    held_by = f" by {holder}" if holder else ""
    return f"port {port} ({role}) is already in use{held_by}; usually that is {usual}."


def _port_holder(port: int) -> str | None:
    """'pid 123 (command line)' of the process listening on ``port``, when we may see it."""
    try:
        import psutil

        for connection in psutil.net_connections(kind="inet"):
            if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
                if connection.pid is None:
                    return None
                command = " ".join(psutil.Process(connection.pid).cmdline())[:120]
                return f"pid {connection.pid} ({command})"
    except Exception:  # noqa: BLE001 - naming the holder is a courtesy; without permission we skip it
        return None
    return None


def _display(path: Path) -> str:
    """``path`` relative to the current directory when it is inside it (shorter, still copy-pasteable)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


class ShutdownSignals:
    """SIGINT, SIGTERM and SIGHUP interrupt start-up or supervision once; later ones are only noted."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> ShutdownSignals:
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *_exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            raise StopRequested(name)
        # The first signal is already stopping everything; raising again would cut that short
        # and leave processes behind.
        print(f"\n[stack] {name}: already stopping, please wait", file=sys.stderr, flush=True)


def up(*, with_senders: bool = True) -> int:
    stack = LocalStack(with_senders=with_senders)
    conflicts = stack.port_conflicts()
    if conflicts:
        for conflict in conflicts:
            print(f"[stack] {conflict}", file=sys.stderr)
        print("[stack] nothing was started; free the port(s) above and run it again.", file=sys.stderr)
        return 1

    started_at = time.monotonic()
    with ShutdownSignals() as signals:
        try:
            stack.start()
            print("\n" + stack.banner(time.monotonic() - started_at), flush=True)
            return _supervise(stack)
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
            stack.stop()
            _say("stopped")


def _supervise(stack: LocalStack) -> int:
    """Watch the components until a signal interrupts; returns 1 when one of them dies."""
    pause = threading.Event()  # never set: a sleep that signals interrupt
    while True:
        pause.wait(SUPERVISION_INTERVAL_SECONDS)
        dead = stack.first_dead_component()
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
        stack.started.remove(dead)
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
