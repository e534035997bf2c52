"""``python -m callback_sender``: run the callback sender until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import uvloop

from callback_sender.settings import CallbackSenderSettings
from callback_sender.webhook import WebhookClient
from callback_sender.worker import CallbackWorker
from shared.database import Database
from shared.logging import configure_logging, get_logger
from shared.ops_server import OpsServer
from shared.shutdown import drain_on_stop, stop_on_signals

log = get_logger(__name__)


async def serve(settings: CallbackSenderSettings) -> None:
    stop = asyncio.Event()
    stop_on_signals(stop)
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(Database.for_service(settings))
        ops = OpsServer(host=settings.ops_host, port=settings.ops_port, readiness_checks={"database": database.check})
        await ops.start()
        stack.push_async_callback(ops.stop)
        draining = asyncio.create_task(drain_on_stop(stop, ops))
        stack.callback(draining.cancel)
        client = WebhookClient(
            policy=settings.callback_target_policy,
            timeout_seconds=settings.timeout_seconds,
            connections=settings.concurrency,
            ca_bundle=settings.ca_bundle,
        )
        stack.push_async_callback(client.close)
        log.info("callback_sender_started", ops_port=settings.ops_port, concurrency=settings.concurrency)
        await CallbackWorker(settings=settings, database=database, client=client).run(stop)
    log.info("callback_sender_stopped")


def main() -> int:
    settings = CallbackSenderSettings()
    configure_logging(level=settings.log_level, fmt=settings.log_format, service="callback_sender")
    uvloop.run(serve(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
