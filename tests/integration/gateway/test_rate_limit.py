"""Per-client rate limits through real gateway processes: 429 and recovery, and one limit held by
two replicas that share the database. The session ``gateway`` fixture runs without a limit; the
gateways here are started with it on."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.client_rate_limit import TAKE_TOKEN
from harness.gateway import Certificates, GatewayProcess, start_gateway
from mtls import pki
from shared.database import Database
from shared.settings import ServiceSettings
from stack.moto import MotoServer

OVERRIDES = {
    "rl-alone": {"rate": 1, "burst": 3},
    # Slow refill, so the few hundred milliseconds the test takes add at most one token.
    "rl-shared": {"rate": 0.5, "burst": 4},
}


@pytest.fixture(scope="module")
def limited(
    prepared: dict[str, str], certificates: Certificates, database_url: str, moto: MotoServer, log_dir: Path
) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    for name in OVERRIDES:
        if not certificates.client(name).cert.exists():
            pki.issue_client_certificate(certificates.directory, name, pki.ROLES)
    env = {"GATEWAY_RATE_LIMIT_ENABLED": "true", "GATEWAY_RATE_LIMIT_OVERRIDES": json.dumps(OVERRIDES)}
    replicas: list[GatewayProcess] = []
    try:
        for index in (1, 2):
            replicas.append(
                start_gateway(
                    certificates=certificates,
                    database_url=database_url,
                    aws_endpoint_url=moto.endpoint_url,
                    log_dir=log_dir,
                    name=f"gateway-limited-{index}",
                    extra_env=env,
                )
            )
        yield replicas[0], replicas[1]
    finally:
        for replica in replicas:
            replica.process.stop()


class TestRateLimit:
    def test_over_the_limit_is_refused_with_retry_after_then_recovers(self, limited: tuple[GatewayProcess, GatewayProcess]) -> None:
        gateway = limited[0]
        with gateway.client("rl-alone") as client:
            statuses = [client.get("/recipients/nobody").status_code for _ in range(3)]
            assert statuses == [404, 404, 404]  # within the burst: the request itself answers
            refused = client.post("/notifications", json={"recipient": "nobody", "message": "m"})
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == "1"
            message = refused.json()["message"]
            assert message == "rate limit exceeded for client 'rl-alone': 1 requests per second with bursts of 3; retry in 1 s"
            with gateway.client("client") as other:
                assert other.get("/recipients/nobody").status_code == 404, "another client has its own bucket"
            time.sleep(float(refused.headers["Retry-After"]) + 0.1)
            assert client.get("/recipients/nobody").status_code == 404

    def test_two_replicas_share_one_limit(self, limited: tuple[GatewayProcess, GatewayProcess]) -> None:
        first, second = limited
        with first.client("rl-shared") as a, second.client("rl-shared") as b:
            statuses = [(a if index % 2 == 0 else b).get("/recipients/nobody").status_code for index in range(10)]
        allowed = statuses.count(404)
        # Alone, each replica would let 4 through (8 in all); together they let the burst through,
        # plus at most the one token refilled while the test ran.
        assert allowed in (4, 5), statuses
        assert statuses.count(429) == 10 - allowed
        assert 429 in statuses[0::2] and 429 in statuses[1::2], "both replicas refuse"

    def test_the_bucket_statement_is_cheap(self, database_url: str) -> None:
        """The extra round trip per request, measured (the figure in gateway/client_rate_limit.py)."""

        async def measure() -> list[float]:
            timings = []
            async with Database.for_service(ServiceSettings(database_url=database_url)) as database, database.connection() as connection:
                await connection.fetchval("SELECT 1")
                for _ in range(2000):
                    started = time.perf_counter()
                    await connection.fetchrow(TAKE_TOKEN, "rl-bench", 1e6, 1e6)
                    timings.append(time.perf_counter() - started)
            return timings

        timings = sorted(asyncio.run(measure()))
        median, p99 = statistics.median(timings), timings[int(len(timings) * 0.99)]
        print(f"rate-limit statement: median {median * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms")
        assert median < 0.005, f"median {median * 1000:.2f} ms"
