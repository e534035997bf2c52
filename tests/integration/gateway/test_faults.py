"""What the gateway does when its dependencies go away, through real network faults.

The gateway under test reaches Postgres and the AWS emulator through TCP proxies the tests cut
and restore: the process sees resets and refused connections, as in a real outage.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from harness.aws import QueueReader
from harness.fault_proxy import FaultProxy
from harness.gateway import Certificates, GatewayProcess, start_gateway
from harness.postgres import PostgresServer, fetch, url_through_proxy
from shared.migrate import upgrade
from stack.moto import MotoServer


@dataclass
class FaultyGateway:
    gateway: GatewayProcess
    database_proxy: FaultProxy
    sns_proxy: FaultProxy
    database_url: str


@pytest.fixture(scope="module")
def faulty(
    postgres_server: PostgresServer, moto: MotoServer, certificates: Certificates, log_dir: Path, prepared: dict
) -> Iterator[FaultyGateway]:
    # A database of its own: another gateway's outbox relay must not publish this one's rows
    # behind the test's back while its SNS is cut.
    database_url = postgres_server.create_database()
    upgrade(database_url)
    database_proxy = postgres_server.proxy()
    sns_proxy = FaultProxy(upstream_host="127.0.0.1", upstream_port=int(moto.endpoint_url.rsplit(":", 1)[1])).start()
    gateway = start_gateway(
        certificates=certificates,
        database_url=url_through_proxy(database_url, database_proxy),
        aws_endpoint_url=f"http://127.0.0.1:{sns_proxy.port}",
        log_dir=log_dir,
        name="gateway-faults",
    )
    yield FaultyGateway(gateway, database_proxy, sns_proxy, database_url)
    gateway.process.stop()
    database_proxy.stop()
    sns_proxy.stop()
    postgres_server.drop_database(database_url)


def wait_until(condition, *, timeout: float, interval: float = 0.3, message: str = "") -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message or "condition not met in time"
        time.sleep(interval)


class TestSnsOutage:
    def test_accepted_during_outage_and_published_after(self, faulty: FaultyGateway, queues: QueueReader) -> None:
        database_url = faulty.database_url
        with faulty.gateway.client() as client:
            assert client.put("/recipients/outage", json={"phone_number": "+14155552671", "email": "o@example.com"}).status_code == 204
            faulty.sns_proxy.cut()
            try:
                accepted = [client.post("/notifications", json={"recipient": "outage", "message": f"m{i}"}) for i in range(12)]
                assert [response.status_code for response in accepted] == [201] * 12
                ids = [response.json()["id"] for response in accepted]
                # Durable while SNS is away: all in the outbox, none in any queue.
                time.sleep(3)
                in_outbox = fetch(database_url, "SELECT count(*) AS n FROM outbox WHERE notification_id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids])
                assert in_outbox[0]["n"] == 12
                assert client.get(f"/notifications/{ids[0]}").json()["published"] is False
                queues.drain()
                assert not any(i in queues.seen for i in ids)
                readiness = httpx.get(f"{faulty.gateway.ops_url}/readyz", timeout=10)
                assert readiness.status_code == 503 and readiness.json()["checks"]["sns"] != "ok"
            finally:
                faulty.sns_proxy.restore()

            # The relay publishes every one of them, once, to both of the recipient's queues.
            for notification_id in ids:
                assert len(queues.wait_for(notification_id, queues=2, timeout=30)) == 2
            wait_until(lambda: client.get(f"/notifications/{ids[-1]}").json()["published"], timeout=10)
        queues.drain()
        assert all(len(queues.seen[i]) == 2 for i in ids)
        assert fetch(database_url, "SELECT count(*) AS n FROM outbox WHERE notification_id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids])[0]["n"] == 0
        metrics = httpx.get(f"{faulty.gateway.ops_url}/metrics").text
        assert 'gateway_publish_failures_total{path="immediate"}' in metrics


class TestDatabaseOutage:
    def test_503_while_postgres_is_down_and_recovery(self, faulty: FaultyGateway, queues: QueueReader) -> None:
        with faulty.gateway.client() as client:
            assert client.put("/recipients/db-outage", json={"slack_id": "U0123456789"}).status_code == 204
            faulty.database_proxy.cut()
            try:
                for response in (
                    client.post("/notifications", json={"recipient": "db-outage", "message": "lost?"}),
                    client.put("/recipients/db-outage", json={"slack_id": "U0123456789"}),
                    client.get("/recipients/db-outage"),
                ):
                    assert response.status_code == 503, response.text
                    assert "database is unavailable" in response.json()["message"]
                    assert response.headers["retry-after"]
                assert httpx.get(f"{faulty.gateway.ops_url}/readyz", timeout=10).status_code == 503
                assert faulty.gateway.process.running
            finally:
                faulty.database_proxy.restore()

            def accepted() -> bool:
                return client.post("/notifications", json={"recipient": "db-outage", "message": "back"}).status_code == 201

            wait_until(accepted, timeout=20, message="the gateway did not recover after Postgres came back")
            assert httpx.get(f"{faulty.gateway.ops_url}/readyz", timeout=10).status_code == 200

    def test_recovers_when_postgres_closes_its_connections(self, faulty: FaultyGateway) -> None:
        # What a Postgres restart does to an idle gateway: every pooled connection is closed by
        # the server. The gateway may answer a 503 per dead connection it finds, then must accept
        # again (it used to keep handing out the dead ones: 503 forever after a restart).
        with faulty.gateway.client() as client:
            assert client.put("/recipients/db-restart", json={"slack_id": "U0123456789"}).status_code == 204
            for i in range(8):  # several pooled connections in use
                assert client.post("/notifications", json={"recipient": "db-restart", "message": f"before {i}"}).status_code == 201
            # current_database(): the URL may be a socket URL, whose last path segment is no name.
            terminated = fetch(
                faulty.database_url,
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            assert terminated[0]["n"] >= 1
            answers = []
            for i in range(40):
                response = client.post("/notifications", json={"recipient": "db-restart", "message": f"after {i}"})
                answers.append(response.status_code)
                if response.status_code == 201:
                    break
                assert response.status_code == 503, response.text
            assert answers[-1] == 201, f"no 201 after the server closed the gateway's connections: {answers}"
