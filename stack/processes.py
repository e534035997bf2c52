"""Child processes that never outlive us, and the servers the local stack runs as such.

Every child process is started through :class:`ManagedProcess`, which makes sure that it dies with
its parent, even when the parent is killed with SIGKILL. :class:`ChildServer` is what moto,
LocalStack and WireMock have in common: a server on ``host:port`` in one such process, started
with or without waiting for it, stopped, killed, its log at hand. :class:`ShutdownSignals` lets a
supervisor (the local-stack runner) stop what it started when it is told to.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar, Self

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
LOGS_DIR = LOCAL_DIR / "logs"

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_LOG_TAIL_WINDOW_BYTES = 256 * 1024


class ComponentError(RuntimeError):
    """A local-stack component could not be started or used."""


class ProcessExitedError(ComponentError):
    """A child process exited while we were waiting for it to become ready."""


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

    def check_running(self) -> None:
        """Raise ProcessExitedError, with the last lines of the log, if the process has exited."""
        if not self.running:
            raise ProcessExitedError(
                f"{self.name} exited with code {self.returncode} before it was ready; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._popen is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
            os.killpg(self._popen.pid, signum)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


class ChildServer:
    """A server in a :class:`ManagedProcess` of its own, listening on ``host:port``.

    A subclass says how to launch it (:meth:`_launch`) and when it is ready (:meth:`_wait_ready`).
    ``start(wait=False)`` returns at once, so that several servers boot together; call
    :meth:`wait_until_ready` afterwards. A server that does not become ready is stopped.
    """

    name: ClassVar[str]
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 10.0

    def __init__(self, port: int, *, host: str = "127.0.0.1", log_path: Path | None = None) -> None:
        self.port = port
        self.host = host
        self.log_path = log_path or LOGS_DIR / f"{self.name}.log"
        self.process: ManagedProcess | None = None

    def _launch(self) -> ManagedProcess:
        """The server's process, started."""
        raise NotImplementedError

    def _wait_ready(self, timeout: float) -> None:
        """Block until the server answers; raise TimeoutError or ProcessExitedError otherwise."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def log_tail(self, lines: int = 50) -> str:
        return self.process.log_tail(lines) if self.process is not None else log_tail(self.log_path, lines)

    def start(self, timeout: float | None = None, *, wait: bool = True) -> Self:
        """Start the server; with ``wait=False`` return at once and call :meth:`wait_until_ready` later."""
        if self.running:
            raise ComponentError(f"{self.name} is already running on {self.host}:{self.port}")
        self.process = self._launch()
        if wait:
            self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout: float | None = None) -> None:
        if self.process is None:
            raise ComponentError(f"{self.name} has not been started")
        try:
            self._wait_ready(self.start_timeout if timeout is None else timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` (the server's own default); returns the exit code."""
        if self.process is None:
            return None
        return self.process.stop(self.stop_timeout if timeout is None else timeout)

    def kill(self) -> int | None:
        return self.process.kill() if self.process is not None else None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


class ShutdownSignals:
    """SIGINT, SIGTERM and SIGHUP interrupt a supervisor's start-up or supervision once (raising
    :class:`StopRequested`); later ones are only noted, on stderr after ``prefix``."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
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
        print(f"\n{self.prefix} {name}: already stopping, please wait", file=sys.stderr, flush=True)
