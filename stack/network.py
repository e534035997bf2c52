"""Ports and HTTP: free ports, waiting until a component answers, and the components' admin APIs."""

from __future__ import annotations

import errno
import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from stack.processes import ComponentError, ManagedProcess

POLL_INTERVAL_SECONDS = 0.1


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
        if process is not None:
            process.check_running()
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout:g} s ({last_error})")
        time.sleep(POLL_INTERVAL_SECONDS)


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
        if process is not None:
            process.check_running()
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
        time.sleep(POLL_INTERVAL_SECONDS)


def http_json(method: str, url: str, payload: Any = None, *, timeout: float = 10.0) -> Any:
    """Call a JSON admin API (moto's, LocalStack's, WireMock's); its answer, parsed when it is JSON."""
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



def port_holder(port: int) -> str | None:
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
