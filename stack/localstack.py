"""``python -m stack.localstack``: LocalStack in the foreground, to run the system on it by hand.

    python -m stack.localstack                        # terminal 1 (`make localstack` does the same)
    AWS_ENDPOINT_URL=http://localhost:4566 make up    # terminal 2: the system, on LocalStack

LocalStack is installed into .local/localstack the first time (see
:func:`stack.components.ensure_localstack`); ``--install-only`` does only that, as `make test` does.
Ctrl-C stops it; its state is in memory and goes with it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from stack.components import (
    LOCALSTACK_SERVICES,
    LOCALSTACK_VERSION,
    LOGS_DIR,
    ComponentError,
    LocalStackServer,
    ensure_localstack,
    port_in_use,
)

DEFAULT_PORT = 4566  # LocalStack's and the README's; AWS_ENDPOINT_URL's default


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack.localstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--install-only", action="store_true", help="install LocalStack if missing, then exit")
    arguments = parser.parse_args(argv)
    try:
        if arguments.install_only:
            print(f"[localstack] LocalStack {LOCALSTACK_VERSION}: {ensure_localstack()}", flush=True)
            return 0
        return run(arguments.port)
    except ComponentError as exc:
        print(f"[localstack] {exc}", file=sys.stderr, flush=True)
        return 1


def run(port: int) -> int:
    # SIGTERM stops it as Ctrl-C does (removing LocalStack's temporary directory), and Ctrl-C works
    # even where the shell started this with SIGINT ignored (in the background).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    if port_in_use(port):
        print(f"[localstack] port {port} is already in use (an earlier LocalStack or moto?)", file=sys.stderr)
        return 1
    server = LocalStackServer(port, log_path=LOGS_DIR / "localstack.log")
    print(f"[localstack] starting LocalStack {LOCALSTACK_VERSION} (installing it first if needed) ...", flush=True)
    try:
        server.start()
        url = server.endpoint_url
        print(
            f"[localstack] ready on {url} ({', '.join(LOCALSTACK_SERVICES)}); log: {server.log_path}\n"
            f"[localstack] sent mail: {url}/_aws/ses   sent SMS: {url}/_aws/sns/sms-messages\n"
            f"[localstack] run the system on it: AWS_ENDPOINT_URL=http://localhost:{port} make up\n"
            "[localstack] Ctrl-C stops it",
            flush=True,
        )
        pause = threading.Event()  # never set: a sleep that Ctrl-C interrupts
        while server.running:
            pause.wait(0.5)
        print(
            f"[localstack] LocalStack exited with code {server.returncode}; last lines of its log:\n"
            f"{server.log_tail(40)}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 0
    except (ComponentError, TimeoutError) as exc:
        print(f"[localstack] {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        server.stop()


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
