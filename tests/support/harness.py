"""The pieces the integration tests start: databases, the gateway process, clients, queues.

Everything is real: a Postgres server (DATABASE_URL's, or an embedded one), the moto server, the
gateway as its own uvicorn process with TLS, httpx and curl with client certificates.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import boto3
import httpx
from sqlalchemy.engine import make_url

from shared.topology import ALL_QUEUES
from stack.components import ManagedProcess, free_port, wait_for_http
from tests.support.fault_proxy import FaultProxy

REPO_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- Postgres


@dataclass
class PostgresServer:
    """Where a Postgres server is: a URL whose database part the tests replace."""

    url: str

    def database_url(self, database: str) -> str:
        return make_url(self.url).set(database=database).render_as_string(hide_password=False)

    def maintenance_url(self) -> str:
        return self.database_url("postgres")

    def create_database(self) -> str:
        name = f"notify_test_{secrets.token_hex(4)}"
        _run(_execute(self.maintenance_url(), f'CREATE DATABASE "{name}"'))
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        _run(_execute(self.maintenance_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def proxy(self) -> FaultProxy:
        """A cuttable TCP proxy in front of this server."""
        parsed = make_url(self.url)
        socket_dir = (parsed.query or {}).get("host")
        if isinstance(socket_dir, tuple):
            socket_dir = socket_dir[0]
        if socket_dir and str(socket_dir).startswith("/"):
            port = parsed.port or int((parsed.query or {}).get("port", 5432))
            return FaultProxy(upstream_unix=Path(socket_dir) / f".s.PGSQL.{port}").start()
        return FaultProxy(upstream_host=parsed.host or "127.0.0.1", upstream_port=parsed.port or 5432).start()


def url_through_proxy(database_url: str, proxy: FaultProxy) -> str:
    parsed = make_url(database_url)
    query = {key: value for key, value in (parsed.query or {}).items() if key not in ("host", "port")}
    return parsed.set(host="127.0.0.1", port=proxy.port, query=query).render_as_string(hide_password=False)


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _run(coroutine: Any) -> Any:
    # A thread of its own, so synchronous helpers also work inside async tests' running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def fetch(database_url: str, query: str, *args: Any) -> list[dict[str, Any]]:
    """Run one query from a synchronous test and return its rows as dicts."""

    async def _fetch() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(_asyncpg_dsn(database_url))
        try:
            return [dict(row) for row in await connection.fetch(query, *args)]
        finally:
            await connection.close()

    return _run(_fetch())


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


@dataclass
class Certificates:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt.pem"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key.pem"

    def client(self, name: str = "client") -> ClientCert:
        return ClientCert(self.directory / f"{name}.crt.pem", self.directory / f"{name}.key.pem")


# ---------------------------------------------------------------- the gateway


@dataclass
class GatewayProcess:
    process: ManagedProcess
    port: int
    ops_port: int
    certificates: Certificates
    database_url: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def ops_url(self) -> str:
        return f"http://127.0.0.1:{self.ops_port}"

    def client(self, name: str = "client", **kwargs: Any) -> httpx.Client:
        """An httpx client presenting the named client certificate."""
        return httpx.Client(base_url=self.base_url, verify=self.ssl_context(name), timeout=15, **kwargs)

    def async_client(self, name: str = "client", **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, verify=self.ssl_context(name), timeout=15, **kwargs)

    def ssl_context(self, name: str | None = "client", *, certificates: Certificates | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certificates.ca))
        if name is not None:
            client = (certificates or self.certificates).client(name)
            context.load_cert_chain(str(client.cert), str(client.key))
        return context

    def curl(self, *args: str, name: str = "client") -> subprocess.CompletedProcess[str]:
        """The curl binary with a client certificate; args are curl's (method, headers, path...)."""
        client = self.certificates.client(name)
        argv = ["curl", "-sS", "--cacert", str(self.certificates.ca), "--cert", str(client.cert), "--key", str(client.key)]
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, check=False)


def start_gateway(
    *,
    certificates: Certificates,
    database_url: str,
    aws_endpoint_url: str,
    log_dir: Path,
    name: str = "gateway",
    extra_env: dict[str, str] | None = None,
) -> GatewayProcess:
    port, ops_port = free_port(), free_port()
    env = {
        "DATABASE_URL": database_url,
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_OPS_PORT": str(ops_port),
        "GATEWAY_TLS_CERT": str(certificates.server_cert),
        "GATEWAY_TLS_KEY": str(certificates.server_key),
        "GATEWAY_TLS_CA": str(certificates.ca),
        "GATEWAY_TLS_CRL": str(certificates.crl),
        "GATEWAY_CRL_RELOAD_INTERVAL_SECONDS": "0.5",
        "GATEWAY_OUTBOX_GRACE_SECONDS": "2",
        "GATEWAY_OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
        "GATEWAY_OUTBOX_MAX_BACKOFF_SECONDS": "2",
        "LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    process = ManagedProcess(name, [sys.executable, "-m", "gateway"], env=env, cwd=REPO_ROOT, log_path=log_dir / f"{name}.log")
    process.start()
    gateway = GatewayProcess(process, port, ops_port, certificates, database_url, env)
    try:
        wait_for_http(f"{gateway.ops_url}/readyz", timeout=60)
    except Exception:
        process.stop()
        raise RuntimeError(f"the gateway did not become ready:\n{process.log_tail()}") from None
    return gateway


# ---------------------------------------------------------------- queues


class QueueReader:
    """Reads (and removes) what SNS delivered to the channel queues, indexed by notification id."""

    def __init__(self, endpoint_url: str) -> None:
        self._sqs = boto3.client(
            "sqs", endpoint_url=endpoint_url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        self._urls = {q.queue: self._sqs.get_queue_url(QueueName=q.queue)["QueueUrl"] for q in ALL_QUEUES}
        self.seen: dict[str, list[tuple[str, dict[str, Any], dict[str, Any]]]] = defaultdict(list)

    def drain(self) -> None:
        for queue, url in self._urls.items():
            while True:
                messages = self._sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
                ).get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    body = json.loads(message["Body"])
                    self.seen[body["notification_id"]].append((queue, body, message.get("MessageAttributes", {})))
                self._sqs.delete_message_batch(
                    QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                )

    def wait_for(self, notification_id: str, *, queues: int, timeout: float = 15.0) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """The deliveries of one notification, once it has reached ``queues`` queues."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            found = self.seen.get(notification_id, [])
            if len(found) >= queues or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def query_param(url: str, name: str) -> str | None:
    values = parse_qs(url.split("?", 1)[1]).get(name) if "?" in url else None
    return values[0] if values else None


def environment_without(*names: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in names}
