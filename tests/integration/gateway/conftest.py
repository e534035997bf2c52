"""Fixtures of the gateway's API tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from harness.gateway import GatewayProcess


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    """An httpx client of the session's gateway, presenting the certificate with every role."""
    with gateway.client() as opened:
        yield opened
