"""LocalStack as the AWS emulator, without Docker; ``python -m stack.localstack`` runs it in the foreground.

    python -m stack.localstack                        # terminal 1 (`make localstack` does the same)
    AWS_ENDPOINT_URL=http://localhost:4566 make up    # terminal 2: the system, on LocalStack

LocalStack is installed into .local/localstack the first time (see
:func:`stack.localstack_install.ensure_localstack`); ``--install-only`` does only that, as `make test`
does. Ctrl-C stops it; its state is in memory and goes with it.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from types import FrameType
from typing import Any

from stack.emulator import EMULATOR_ACCOUNT_ID, EMULATOR_CREDENTIALS, Emulator, raw_email, sent_sms, simple_email
from stack.localstack_install import LOCALSTACK_INSTALL_DIR, LOCALSTACK_VERSION, ensure_localstack, localstack_static_libs
from stack.network import POLL_INTERVAL_SECONDS, http_json, port_in_use
from stack.processes import LOGS_DIR, ComponentError, ManagedProcess

LOCALSTACK_SERVICES = ("sns", "sqs", "ses", "logs", "sts")
DEFAULT_PORT = 4566  # LocalStack's and the README's; AWS_ENDPOINT_URL's default
# LocalStack's entry point, run so that it dies at once with its parent: ManagedProcess asks for
# SIGTERM, and LocalStack's graceful shutdown sometimes hangs, which would leave it running for good.
_LOCALSTACK_MAIN = (
    "import ctypes, runpy, signal, sys\n"
    "if sys.platform.startswith('linux'):\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG\n"
    "runpy.run_module('localstack.runtime.main', run_name='__main__', alter_sys=True)\n"
)


class LocalStackServer(Emulator):
    """LocalStack (SNS, SQS, SES) as a child process on ``host:port``.

    It runs from the virtualenv :func:`ensure_localstack` makes (installed on the first start), in
    host mode rather than Docker: its state is in memory and in a temporary directory of its own
    that :meth:`stop` removes. What differs from moto is in the methods' docstrings.
    """

    name = "localstack"
    start_timeout = 120.0
    # Its graceful shutdown takes seconds and sometimes hangs; it has nothing to flush (its state
    # is thrown away), so do not wait long before SIGKILL.
    stop_timeout = 2.0

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
        super().__init__(port, host=host, log_path=log_path)
        self.region = region
        self.version = version
        self._install_dir = install_dir
        self._state_dir: Path | None = None

    def _launch(self) -> ManagedProcess:
        """Install LocalStack first if needed, then start it."""
        python = ensure_localstack(self._install_dir, self.version)
        # LocalStack says "Ready." even when it could not listen, and then serves nothing: look first.
        if port_in_use(self.port, self.host):
            raise ComponentError(f"LocalStack cannot listen on {self.host}:{self.port}: the port is already in use")
        self._state_dir = Path(tempfile.mkdtemp(prefix="localstack-"))
        # The service catalog the install built; without it the first request takes ten seconds.
        (self._state_dir / "usr" / "lib").mkdir(parents=True)
        (self._state_dir / "usr" / "lib" / "localstack").symlink_to(localstack_static_libs(python.parent.parent))
        return ManagedProcess(
            self.name,
            [str(python), "-c", _LOCALSTACK_MAIN],
            env=self._environment(self._state_dir),
            cwd=self._state_dir,
            log_path=self.log_path,
        ).start()

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

    def _wait_ready(self, timeout: float) -> None:
        """Until the health endpoint shows SNS, SQS and SES running (seconds; more on a busy machine)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last_outcome = "no answer yet"
        while True:
            self.process.check_running()
            try:
                health = http_json("GET", f"{self.endpoint_url}/_localstack/health", timeout=2.0)
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
            time.sleep(POLL_INTERVAL_SECONDS)

    def stop(self, timeout: float | None = None) -> int | None:
        code = super().stop(timeout)
        self._remove_state()
        return code

    def kill(self) -> int | None:
        code = super().kill()
        self._remove_state()
        return code

    def _remove_state(self) -> None:
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def reset(self) -> None:
        """Forget every resource and message, as moto's reset does, in ``region``.

        LocalStack's community edition has no reset endpoint and a restart takes seconds, so this
        deletes every SNS subscription and topic, SQS queue and SES identity through the AWS APIs
        (half a second) and clears the sent emails and SMS. The topology and SES identities must be
        created again.
        """
        import boto3

        options = {"endpoint_url": self.endpoint_url, "region_name": self.region, **EMULATOR_CREDENTIALS}
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
        http_json("DELETE", f"{self.endpoint_url}/_aws/ses")
        http_json("DELETE", self._sms_messages_url())

    def sent_emails(self) -> list[dict[str, Any]]:
        """See :meth:`Emulator.sent_emails`: SES v1 only (LocalStack has no SESv2).

        LocalStack does not keep a raw send's Destinations, so there ``destination`` is the To and
        Cc headers' addresses. Templated sends are left out, as moto's are.
        """
        emails = []
        for message in http_json("GET", f"{self.endpoint_url}/_aws/ses")["messages"]:
            if "RawData" in message:
                emails.append(raw_email(message["Id"], message["RawData"], source=message.get("Source"), destination=None))
            elif "Body" in message:
                body = message["Body"]
                emails.append(
                    simple_email(
                        message["Id"],
                        source=message["Source"],
                        destinations=message.get("Destination") or {},
                        subject=message.get("Subject"),
                        body=body.get("html_part") or body.get("text_part"),
                    )
                )
        return emails

    def sent_sms(self) -> list[dict[str, Any]]:
        """See :meth:`Emulator.sent_sms`.

        LocalStack keeps them per account and region (``region``'s are read) and returns them
        grouped by number: oldest first for each number, the numbers in the order of their first SMS.
        """
        by_number = http_json("GET", self._sms_messages_url())["sms_messages"]
        return [
            sent_sms(message.get("MessageId"), message["PhoneNumber"], message["Message"])
            for messages in by_number.values()
            for message in messages
        ]

    def _sms_messages_url(self) -> str:
        query = urllib.parse.urlencode({"accountId": EMULATOR_ACCOUNT_ID, "region": self.region})
        return f"{self.endpoint_url}/_aws/sns/sms-messages?{query}"


# ---------------------------------------------------------------- python -m stack.localstack


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
