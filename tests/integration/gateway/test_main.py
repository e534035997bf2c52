"""``python -m gateway`` with GATEWAY_REUSE_PORT: two processes on one port, both serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.gateway import Certificates, GatewayProcess, start_gateway
from stack.moto import MotoServer

REUSE_PORT = {"GATEWAY_REUSE_PORT": "true"}


@pytest.fixture(scope="module")
def two_gateways(
    prepared: dict[str, str], certificates: Certificates, database_url: str, moto: MotoServer, log_dir: Path
) -> Iterator[list[GatewayProcess]]:
    common = {"certificates": certificates, "database_url": database_url, "aws_endpoint_url": moto.endpoint_url, "log_dir": log_dir}
    first = start_gateway(name="gateway-reuse-1", extra_env=REUSE_PORT, **common)
    try:
        second = start_gateway(name="gateway-reuse-2", extra_env=REUSE_PORT, port=first.port, **common)
        yield [first, second]
        second.stop()
    finally:
        first.stop()


def served_requests(gateway: GatewayProcess) -> float:
    text = httpx.get(f"{gateway.ops_url}/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("gateway_requests_total{"))


def test_two_processes_share_the_port_and_the_kernel_spreads_connections_over_both(two_gateways: list[GatewayProcess]) -> None:
    first, second = two_gateways
    before = [served_requests(gateway) for gateway in two_gateways]
    # A connection of its own per request: SO_REUSEPORT spreads connections, not requests.
    for _ in range(40):
        with first.client() as client:
            assert client.get("/recipients").status_code == 200
    after = [served_requests(gateway) for gateway in two_gateways]
    served = [a - b for a, b in zip(after, before, strict=True)]
    assert sum(served) == 40
    assert min(served) > 0, f"one process took every connection: {served}"


def test_without_reuse_port_a_second_process_on_the_port_does_not_start(
    two_gateways: list[GatewayProcess], certificates: Certificates, database_url: str, moto: MotoServer, log_dir: Path
) -> None:
    with pytest.raises(RuntimeError, match="did not become ready"):
        start_gateway(
            name="gateway-no-reuse", certificates=certificates, database_url=database_url, aws_endpoint_url=moto.endpoint_url,
            log_dir=log_dir, port=two_gateways[0].port,
        )
