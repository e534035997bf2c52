"""Queue depth as Prometheus gauges, polled by every sender for its own queue and DLQ.

SQS's own numbers live in CloudWatch, which the local stack (moto) does not have and which
Prometheus cannot scrape; so each sender asks SQS every ``POLL_INTERVAL_SECONDS`` for
``ApproximateNumberOfMessages`` (and ``...NotVisible``) of its queue and dead-letter queue, and
for the age of the oldest dead letter. Several replicas of a sender report the same values:
alert rules take ``max by (channel, queue)``.

The oldest age is found by *peeking*: a receive with ``VisibilityTimeout=0`` that leaves the
messages where they are, reading their ``SentTimestamp`` (for a dead letter, when it was first
sent to the source queue). It looks at up to ten messages, so on a large DLQ it is a lower bound.
Only dead-letter queues are peeked: a receive counts towards a message's
``ApproximateReceiveCount``, which on a source queue would move it to the DLQ sooner.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import Gauge

from shared.logging import get_logger

log = get_logger(__name__)

POLL_INTERVAL_SECONDS = 30.0

QUEUE_DEPTH = Gauge(
    "sender_queue_depth", "Messages waiting in the queue (ApproximateNumberOfMessages)", ["channel", "queue"]
)
QUEUE_IN_FLIGHT = Gauge(
    "sender_queue_messages_in_flight",
    "Messages received and not yet deleted or visible again (ApproximateNumberOfMessagesNotVisible)",
    ["channel", "queue"],
)
OLDEST_DEAD_LETTER_AGE = Gauge(
    "sender_dead_letter_oldest_age_seconds",
    "Age of the oldest message seen in the dead-letter queue (0 when it is empty)",
    ["channel", "queue"],
)


async def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(messages waiting, messages in flight), as SQS approximates them."""
    attributes = (
        await sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)), int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))


async def oldest_message_age_seconds(sqs: Any, queue_url: str, *, now: float | None = None) -> float | None:
    """The age of the oldest of up to ten messages peeked at; None when none was visible.

    Use it on dead-letter queues only (see the module docstring).
    """
    response = await sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
        WaitTimeSeconds=0,
        MessageSystemAttributeNames=["SentTimestamp"],
    )
    sent = [int(m["Attributes"]["SentTimestamp"]) for m in response.get("Messages", []) if "SentTimestamp" in m.get("Attributes", {})]
    if not sent:
        return None
    return max(0.0, (now if now is not None else time.time()) - min(sent) / 1000)


class QueueDepthReporter:
    """Keeps the gauges of one channel's queues and DLQs (both lanes) up to date until cancelled."""

    def __init__(self, sqs: Any, *, channel: str, queues: dict[str, str], dead_letter_queues: frozenset[str]) -> None:
        self._sqs = sqs
        self._channel = channel
        self._queues = queues  # queue name -> URL
        self._dead_letter_queues = dead_letter_queues
        self._task: asyncio.Task[None] | None = None

    def start(self, interval: float = POLL_INTERVAL_SECONDS) -> None:
        self._task = asyncio.create_task(self.run(interval), name="queue-metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def poll(self) -> None:
        for name, url in self._queues.items():
            waiting, in_flight = await queue_counts(self._sqs, url)
            QUEUE_DEPTH.labels(self._channel, name).set(waiting)
            QUEUE_IN_FLIGHT.labels(self._channel, name).set(in_flight)
            if name in self._dead_letter_queues:
                age = await oldest_message_age_seconds(self._sqs, url) if waiting else None
                OLDEST_DEAD_LETTER_AGE.labels(self._channel, name).set(age or 0.0)

    async def run(self, interval: float = POLL_INTERVAL_SECONDS) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - stale gauges beat a dead sender; try again
                log.warning("queue metrics poll failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(interval)
