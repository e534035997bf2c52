"""aioboto3 clients configured from the service settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aioboto3
from botocore.config import Config

from shared.settings import ServiceSettings

# Fail fast and let our own retry logic (outbox relay, SQS redelivery) decide what happens next:
# botocore's default of retrying for tens of seconds would hold requests open during an outage.
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=25,  # above SQS long polling's 20 s
    retries={"max_attempts": 2, "mode": "standard"},
    max_pool_connections=64,
)


@asynccontextmanager
async def aws_clients(settings: ServiceSettings, *services: str, config: Config = CLIENT_CONFIG) -> AsyncIterator[Any]:
    """Open one aioboto3 client per named service; yields a tuple (or the single client)."""
    session = aioboto3.Session()
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(session.client(service, config=config, **settings.aws_client_kwargs()))
            for service in services
        ]
        yield clients[0] if len(clients) == 1 else tuple(clients)
