"""A client's callback receiver, as a real process (``python -m harness.webhook_receiver``).

It serves HTTPS (a certificate of a CA of its own, which the callback sender is told to trust
through ``CALLBACKS_CA_BUNDLE``) or plain HTTP, and stands in for the receivers of several
clients at once: each client gets a path (``/<name>``) with its secret and a behaviour, set
through ``PUT /__admin/receivers/<name>`` (``{"secret", "mode", "fail_rate", "delay_seconds"}``;
``mode``: ``ok`` answers 204, ``status`` answers ``status`` (e.g. 400, 503), ``hang`` never
answers). Every request is verified with the ``standardwebhooks`` package against the path's
secret and appended to ``events.jsonl`` in its state directory (verified or not, with the
status it was answered), so the log survives the receiver's own restarts (a receiver that is
"down" is a stopped process: connections are refused). The configuration survives them too.

:class:`Receiver` starts and stops it from tests and reads its log back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import ssl
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mtls import pki
from mtls.paths import PkiPaths
from stack.network import free_port, wait_for_port
from stack.processes import REPO_ROOT, ManagedProcess

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"


# ---------------------------------------------------------------- the server (its own process)


class ReceiverApp:
    def __init__(self, state_dir: Path) -> None:
        self._state_dir = state_dir
        self._config_path = state_dir / CONFIG_FILE
        self._config: dict[str, dict[str, Any]] = json.loads(self._config_path.read_text()) if self._config_path.exists() else {}
        self._log = (state_dir / EVENTS_FILE).open("a", buffering=1)
        self._random = random.Random()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_put("/__admin/receivers/{name}", self._configure)
        app.router.add_get("/__admin/health", self._health)
        app.router.add_post("/{name}", self._receive)
        return app

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _configure(self, request: web.Request) -> web.Response:
        self._config[request.match_info["name"]] = await request.json()
        self._config_path.write_text(json.dumps(self._config))
        return web.json_response({"ok": True})

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        received_at = time.time()
        body = await request.text()
        config = self._config.get(name)
        if config is None:
            return web.Response(status=404, text=f"no receiver {name}")
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            payload = Webhook(config["secret"]).verify(body, headers)
            verified, error = True, None
        except (WebhookVerificationError, ValueError) as exc:
            payload, verified, error = None, False, str(exc)
        if payload is None:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        mode = config.get("mode", "ok")
        if mode == "hang":
            self._write(name, headers, payload, verified, error, received_at, None)
            await asyncio.Event().wait()  # until the client gives up and the connection goes
        if config.get("delay_seconds"):
            await asyncio.sleep(float(config["delay_seconds"]))
        status = 204
        if mode == "status":
            status = int(config["status"])
        elif self._random.random() < float(config.get("fail_rate", 0.0)):
            status = 500
        self._write(name, headers, payload, verified, error, received_at, status)
        response_headers = {"Retry-After": str(config["retry_after"])} if config.get("retry_after") is not None else None
        return web.Response(status=status, text="refused" if status >= 300 else "", headers=response_headers)

    def _write(self, name: str, headers: dict[str, str], payload: Any, verified: bool, error: str | None, at: float, status: int | None) -> None:
        record = {
            "receiver": name,
            "webhook_id": headers.get("webhook-id"),
            "webhook_timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "verified": verified,
            "error": error,
            "received_at": at,
            "answered": status,
            "payload": payload,
        }
        self._log.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.webhook_receiver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--tls-dir", type=Path, help="serve HTTPS with this directory's server certificate")
    arguments = parser.parse_args(argv)
    context = None
    if arguments.tls_dir is not None:
        files = PkiPaths.in_directory(arguments.tls_dir)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(files.server_cert), str(files.server_key))
    web.run_app(
        ReceiverApp(arguments.state_dir).app(), host="127.0.0.1", port=arguments.port, ssl_context=context, access_log=None, print=None
    )
    return 0


# ---------------------------------------------------------------- the tests' side


@dataclass
class Received:
    receiver: str
    webhook_id: str
    verified: bool
    answered: int | None
    received_at: float
    payload: dict[str, Any]
    signature: str | None = None  # the webhook-signature header as it came

    @property
    def type(self) -> str:
        return self.payload["type"]

    @property
    def data(self) -> dict[str, Any]:
        return self.payload["data"]


class Receiver:
    """The receiver process: its URL per client name, its configuration, what it received."""

    def __init__(self, directory: Path, *, tls: bool = True, log_dir: Path) -> None:
        self.directory = directory
        self.state_dir = directory / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tls_dir = directory / "tls"
        self.tls = tls
        if tls and not PkiPaths.in_directory(self.tls_dir).server_cert.exists():
            pki.create_ca(self.tls_dir, common_name="Callback receivers' test CA")
            pki.issue_server_certificate(self.tls_dir)  # localhost and 127.0.0.1
        self.port = free_port()
        argv = [sys.executable, "-m", "harness.webhook_receiver", "--port", str(self.port), "--state-dir", str(self.state_dir)]
        if tls:
            argv += ["--tls-dir", str(self.tls_dir)]
        self.process = ManagedProcess(f"webhook-receiver-{self.port}", argv, cwd=REPO_ROOT, log_path=log_dir / f"webhook-receiver-{self.port}.log")

    @property
    def ca_bundle(self) -> Path:
        """The CA that signed the receiver's certificate: the callback sender's CALLBACKS_CA_BUNDLE."""
        return PkiPaths.in_directory(self.tls_dir).ca_cert

    def url(self, name: str, *, host: str = "localhost") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/{name}"

    def start(self) -> Receiver:
        self.process.start()
        wait_for_port(self.port, timeout=30, process=self.process)
        return self

    def stop(self) -> None:
        self.process.stop()

    def configure(self, name: str, *, secret: str, mode: str = "ok", **options: Any) -> None:
        context = ssl.create_default_context(cafile=str(self.ca_bundle)) if self.tls else None
        request = urllib.request.Request(
            f"{self.url('__admin/receivers/' + name)}",
            data=json.dumps({"secret": secret, "mode": mode, **options}).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            response.read()

    def received(self, name: str | None = None) -> list[Received]:
        path = self.state_dir / EVENTS_FILE
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line the process was writing when it was stopped
            if (name is None or record["receiver"] == name) and isinstance(record.get("payload"), dict):
                records.append(
                    Received(
                        receiver=record["receiver"],
                        webhook_id=record["webhook_id"],
                        verified=record["verified"],
                        answered=record["answered"],
                        received_at=record["received_at"],
                        payload=record["payload"],
                        signature=record["signature"],
                    )
                )
        return records


if __name__ == "__main__":
    raise SystemExit(main())
