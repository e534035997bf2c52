"""aiobotocore clients configured from the service settings.

Every client of a process reads botocore's data (endpoints.json, the service models) through one
loader, ``DATA_LOADER``, which parses each file once, as plain dicts, and keeps of endpoints.json
only the services in ``AWS_SERVICES``. botocore's own loader, one per session, parses into
``OrderedDict``s (a third more memory) and the whole of endpoints.json (1.2 MB of JSON, 5 MB of
objects) for every session: the SMS sender's four sessions (SQS, SNS, CloudWatch Logs, STS) held
four copies, 20 MB of its RSS. The sessions themselves (credentials, configuration) stay one per
``aws_clients`` call, as before; only the read-only data is shared.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from aiobotocore.session import AioSession
from botocore.config import Config
from botocore.loaders import JSONFileLoader, Loader

from shared.settings import ServiceSettings

# Fail fast and let our own retry logic (outbox relay, SQS redelivery) decide what happens next:
# botocore's default of retrying for tens of seconds would hold requests open during an outage.
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=25,  # above SQS long polling's 20 s
    retries={"max_attempts": 2, "mode": "standard"},
    max_pool_connections=64,
)

# The AWS services the project opens clients of (botocore's names), each with the prefix
# endpoints.json lists it under. ``aws_clients`` refuses any other: endpoints.json is pruned to these.
AWS_SERVICES = {
    "sqs": "sqs",
    "sns": "sns",
    "ses": "email",
    "logs": "logs",
    "sts": "sts",
    "cloudwatch": "monitoring",
    "ecs": "ecs",
    "application-autoscaling": "application-autoscaling",
}


class ProjectDataFileLoader(JSONFileLoader):
    """botocore's JSON file loader, parsing into plain dicts (ordered too) and pruning endpoints.json
    to the endpoints of ``AWS_SERVICES``."""

    def load_file(self, file_path: str) -> Any:
        for extension in (".json", ".json.gz"):
            if os.path.isfile(file_path + extension):
                break
        else:
            return None
        if os.path.basename(file_path) != "endpoints":
            return _parse(file_path + extension)
        # Through a string, so that nothing of the whole document (its strings included) stays
        # referenced: its memory goes back for reuse instead of being pinned by the few entries kept.
        pruned = json.dumps(_pruned_endpoints(_parse(file_path + extension)))
        return json.loads(pruned)


def _parse(path: str) -> Any:
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as compressed:
            return json.loads(compressed.read().decode("utf-8"))
    with open(path, "rb") as plain:
        return json.loads(plain.read().decode("utf-8"))


def _pruned_endpoints(endpoints: dict[str, Any]) -> dict[str, Any]:
    prefixes = set(AWS_SERVICES.values())
    return {
        **endpoints,
        "partitions": [
            {**partition, "services": {name: service for name, service in partition["services"].items() if name in prefixes}}
            for partition in endpoints["partitions"]
        ],
    }


# One per process: botocore's Loader caches what it loaded. Shared by every session as botocore
# shares it between the clients of one session: its endpoint resolver fills in a region's resolved
# values (hostname, protocols) in place, the same values whichever client resolves them.
DATA_LOADER = Loader(file_loader=ProjectDataFileLoader())


@asynccontextmanager
async def aws_clients(settings: ServiceSettings, *services: str, config: Config = CLIENT_CONFIG) -> AsyncIterator[Any]:
    """Open one aiobotocore client per named service; yields a tuple (or the single client)."""
    unknown = sorted(set(services) - AWS_SERVICES.keys())
    if unknown:
        raise ValueError(f"no endpoints kept for AWS service {', '.join(unknown)}: add it to shared.aws.AWS_SERVICES")
    session = AioSession()
    session.register_component("data_loader", DATA_LOADER)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(session.create_client(service, config=config, **settings.aws_client_kwargs()))
            for service in services
        ]
        yield clients[0] if len(clients) == 1 else tuple(clients)
