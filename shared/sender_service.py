"""A sender process: settings in, ops port up, the consumers running until SIGTERM/SIGINT.

Each ``sender_<channel>/__main__.py`` is one call: ``run_sender(settings=..., providers=...)``:
the providers its settings name, in order, run through one ``FailoverProvider``
(``shared/failover.py``, whose breakers guard a channel of one provider too),
with the other queues the process consumes, each with its own handler (``HandledQueue``: the
email sender's receipts), and background tasks (``tasks``: the SMS sender's delivery-log reader).
They share the process's database pool, ops server and shutdown.

A sender consumes both of its channel's lanes (``shared/topology.py``): two ``Consumer`` runtimes
side by side, the one-offs' queue with ``concurrency`` slots and the bulk queue with
``bulk_concurrency`` slots of its own, sharing the provider, the database pool and one provider
rate limit. Each lane is the whole runtime (claims, retries, DLQ, shutdown) unchanged; a bulk
backlog can hold only its own slots, so a one-off never waits for a slot behind it, and at most
``bulk_concurrency`` bulk sends wait for tokens ahead of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

import uvloop
from botocore.config import Config

from shared.aws import CLIENT_CONFIG, aws_clients
from shared.backoff import QUEUE_RESOLUTION
from shared.consumer import Consumer, QueueConsumer
from shared.database import Database
from shared.deliveries import DeliveryRepository
from shared.failover import FailoverProvider, NamedProvider
from shared.logging import configure_logging, get_logger
from shared.ops_server import OpsServer
from shared.provider_rate_limit import SharedRateLimiter
from shared.queue_metrics import QueueDepthReporter
from shared.sender_settings import SenderSettings
from shared.shutdown import drain_on_stop, stop_on_signals
from shared.sqs_queue import SqsQueue
from shared.token_bucket import KeyedRateLimiter, RateLimiter

log = get_logger(__name__)


@dataclass(frozen=True)
class HandledQueue:
    """Another queue a sender's process consumes on the shared runtime, with its own handler."""

    queue_name: str
    dead_letter_queue_name: str
    settings: SenderSettings  # its runtime's (concurrency, timings)
    # The consumer (a QueueConsumer subclass: the handler) for the resolved queue.
    consumer: Callable[[SqsQueue, Database, str], QueueConsumer]


# A background task of a sender (database, stop) -> runs until stop is set.
BackgroundTask = Callable[[Database, asyncio.Event], Awaitable[None]]


def run_sender(
    *,
    settings: SenderSettings,
    providers: list[NamedProvider],
    handled_queues: Sequence[HandledQueue] = (),
    tasks: Sequence[BackgroundTask] = (),
) -> int:
    """Run a sender until it is told to stop; returns the process exit code."""
    configure_logging(level=settings.log_level, fmt=settings.log_format, service=f"sender_{settings.channel.value}")
    # uvloop: the senders spend most of their CPU in the event loop and socket callbacks.
    provider = FailoverProvider(providers, policy=settings.breaker_policy)
    log.info("providers", providers=provider.names)
    uvloop.run(serve(settings=settings, provider=provider, handled_queues=handled_queues, tasks=tasks))
    return 0


async def serve(
    *,
    settings: SenderSettings,
    provider: FailoverProvider,
    stop: asyncio.Event | None = None,
    handled_queues: Sequence[HandledQueue] = (),
    tasks: Sequence[BackgroundTask] = (),
) -> None:
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    instance_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"

    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(Database.for_service(settings))
        # Fail fast: the runtime decides about retries, and a queue that cannot be reached
        # should show on /readyz rather than inside botocore's retry loop.
        sqs = await stack.enter_async_context(
            aws_clients(settings, "sqs", config=CLIENT_CONFIG.merge(Config(max_pool_connections=settings.concurrency + 16)))
        )
        queue = SqsQueue(sqs, queue_name=settings.queue_name, dead_letter_queue_name=settings.dead_letter_queue_name)
        bulk_settings = settings.bulk_lane()
        bulk_queue = SqsQueue(sqs, queue_name=bulk_settings.queue_name, dead_letter_queue_name=bulk_settings.dead_letter_queue_name)
        others = [
            (handled, SqsQueue(sqs, queue_name=handled.queue_name, dead_letter_queue_name=handled.dead_letter_queue_name))
            for handled in handled_queues
        ]
        ops = OpsServer(
            host=settings.ops_host,
            port=settings.ops_port,
            readiness_checks={
                "database": database.check,
                "queue": queue.check,
                "bulk_queue": bulk_queue.check,
                **{f"queue {other.queue_name}": other.check for _, other in others},
            },
        )
        await ops.start()
        stack.push_async_callback(ops.stop)
        draining = asyncio.create_task(drain_on_stop(stop, ops))
        stack.callback(draining.cancel)

        for resolving in (queue, bulk_queue, *(other for _, other in others)):
            if not await _resolve_queues(resolving, stop):
                return
        depth = QueueDepthReporter(
            sqs,
            channel=settings.channel.value,
            queues={
                name: url
                for each in (queue, bulk_queue, *(other for _, other in others))
                for name, url in ((each.queue_name, each.queue_url), (each.dead_letter_queue_name, each.dead_letter_queue_url))
            },
            dead_letter_queues=frozenset(
                {queue.dead_letter_queue_name, bulk_queue.dead_letter_queue_name, *(other.dead_letter_queue_name for _, other in others)}
            ),
        )
        depth.start()
        stack.push_async_callback(depth.stop)
        await stack.enter_async_context(provider)
        deliveries = DeliveryRepository(database)
        # One provider rate limit for both lanes, so together they never exceed it: shared by
        # every replica (in Postgres) when rate_limit_shared, else this process's.
        rate_limiter: RateLimiter = (
            SharedRateLimiter(database, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
            if settings.rate_limit_shared
            else KeyedRateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
        )
        runs = [
            Consumer(
                settings=lane_settings,
                provider=provider,
                queue=lane_queue,
                deliveries=deliveries,
                instance_id=instance_id,
                rate_limiter=rate_limiter,
            ).run(stop)
            for lane_settings, lane_queue in ((settings, queue), (bulk_settings, bulk_queue))
        ]
        runs += [handled.consumer(other, database, instance_id).run(stop) for handled, other in others]
        runs += [task(database, stop) for task in tasks]
        await asyncio.gather(*runs)
    log.info("sender stopped")


async def _resolve_queues(queue: SqsQueue, stop: asyncio.Event) -> bool:
    """Wait until the queues exist (the stack may still be starting); False when told to stop."""
    attempt = 0
    while not stop.is_set():
        try:
            await queue.resolve()
            return True
        except Exception as exc:  # noqa: BLE001 - keep trying; /readyz shows the problem
            log.warning("queues not available yet", queue=queue.queue_name, error=f"{type(exc).__name__}: {exc}")
        attempt += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=QUEUE_RESOLUTION.delay(attempt))
    return False
