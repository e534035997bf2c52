"""Publishing accepted notifications to SNS: right away, and again from the outbox if needed.

A 201 means the notification and its outbox row are committed. From there two paths lead to
SNS, and either is enough:

- ``NotificationPublisher`` publishes it immediately (batched with PublishBatch when several
  are waiting) and deletes the outbox rows SNS confirmed.
- ``OutboxRelay`` periodically claims outbox rows the immediate path has not cleared (SNS was
  down, the process died) and publishes them, backing off per row. Claims are leases taken with
  ``FOR UPDATE SKIP LOCKED``, so several gateway replicas share the work without waiting on
  each other.

A message may reach SNS twice (published, then the process died before deleting its outbox row);
the senders' delivery claims make that harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.notifications.repository import OutboxRepository, message_from_row
from shared.backoff import compute_backoff
from shared.database import is_database_unavailable
from shared.logging import get_logger
from shared.messages import NotificationMessage

log = get_logger(__name__)

SNS_BATCH_LIMIT = 10  # PublishBatch takes at most 10 entries

PUBLISHED = Counter("gateway_notifications_published_total", "Notifications SNS confirmed.", ["path"])
PUBLISH_FAILURES = Counter("gateway_publish_failures_total", "Notifications SNS did not take.", ["path"])
OUTBOX_BACKLOG = Gauge("gateway_outbox_backlog", "Accepted notifications not yet confirmed by SNS.")


class SnsPublisher:
    """Publishes messages to the topic; returns which ones SNS refused (id -> reason)."""

    def __init__(self, sns: Any, topic_arn: str) -> None:
        self._sns, self.topic_arn = sns, topic_arn

    async def publish(self, messages: Sequence[NotificationMessage]) -> dict[UUID, str]:
        failed: dict[UUID, str] = {}
        for start in range(0, len(messages), SNS_BATCH_LIMIT):
            chunk = messages[start : start + SNS_BATCH_LIMIT]
            try:
                failed.update(await self._publish_chunk(chunk))
            except Exception as exc:  # noqa: BLE001 - any failure leaves the rows for the relay
                reason = f"{type(exc).__name__}: {exc}"
                failed.update({message.notification_id: reason for message in chunk})
        return failed

    async def _publish_chunk(self, chunk: Sequence[NotificationMessage]) -> dict[UUID, str]:
        if len(chunk) == 1:
            message = chunk[0]
            await self._sns.publish(
                TopicArn=self.topic_arn,
                Message=message.to_json(),
                MessageAttributes=message.sns_message_attributes(),
            )
            return {}
        response = await self._sns.publish_batch(
            TopicArn=self.topic_arn,
            PublishBatchRequestEntries=[
                {
                    "Id": str(index),
                    "Message": message.to_json(),
                    "MessageAttributes": message.sns_message_attributes(),
                }
                for index, message in enumerate(chunk)
            ],
        )
        return {
            chunk[int(entry["Id"])].notification_id: f"{entry.get('Code')}: {entry.get('Message', '')}"
            for entry in response.get("Failed", [])
        }


class NotificationPublisher:
    """The immediate path: a few workers drain an in-memory queue into PublishBatch calls."""

    # An SNS call costs about as much CPU as serialising ten messages (botocore's hooks, signing
    # and HTTP exchange are per call), so batches should be full. One worker at a time gathers a
    # batch, waiting up to this long for ten messages, while the others publish theirs: from about
    # 200 notifications a second every call carries ten (a tenth of the calls and outbox deletes),
    # and a lone notification reaches SNS this much later (the 201 does not wait for it; delivery
    # takes longer than this anyway).
    BATCH_FILL_SECONDS = 0.05

    def __init__(
        self, *, sns: SnsPublisher, engine: AsyncEngine, hand_over_after: float, workers: int = 4, capacity: int = 10_000
    ) -> None:
        self._sns, self._engine, self._hand_over_after = sns, engine, hand_over_after
        self._queue: asyncio.Queue[tuple[float, NotificationMessage]] = asyncio.Queue(maxsize=capacity)
        self._outbox = OutboxRepository()
        self._gathering = asyncio.Lock()
        self._batch_full: asyncio.Future[None] | None = None  # set while a worker waits for a batch to fill
        self._workers = [asyncio.create_task(self._work(), name=f"publisher-{n}") for n in range(workers)]

    def submit(self, message: NotificationMessage) -> None:
        try:
            self._queue.put_nowait((time.monotonic(), message))
        except asyncio.QueueFull:
            # Under a long SNS outage: the row is in the outbox, the relay will publish it.
            return
        # The gathering worker holds one message already: nine more make a full batch.
        if self._batch_full is not None and self._queue.qsize() >= SNS_BATCH_LIMIT - 1:
            _settle(self._batch_full)

    async def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (for up to ``timeout``); anything left stays in the outbox."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _gather(self) -> list[tuple[float, NotificationMessage]]:
        batch = [await self._queue.get()]
        if self._queue.qsize() < SNS_BATCH_LIMIT - 1:
            loop = asyncio.get_running_loop()
            self._batch_full = loop.create_future()
            timer = loop.call_later(self.BATCH_FILL_SECONDS, _settle, self._batch_full)
            try:
                await self._batch_full
            finally:
                timer.cancel()
                self._batch_full = None
        while len(batch) < SNS_BATCH_LIMIT and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _work(self) -> None:
        while True:
            async with self._gathering:
                batch = await self._gather()
            # What waited past the outbox grace period is the relay's now: publishing it here
            # as well would send it twice.
            deadline = time.monotonic() - self._hand_over_after
            fresh = [message for queued_at, message in batch if queued_at > deadline]
            try:
                if fresh:
                    await self._publish(fresh)
            except Exception:  # noqa: BLE001 - the relay retries from the outbox
                log.exception("immediate_publish_failed", count=len(fresh))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _publish(self, batch: list[NotificationMessage]) -> None:
        failed = await self._sns.publish(batch)
        published = [message.notification_id for message in batch if message.notification_id not in failed]
        PUBLISHED.labels("immediate").inc(len(published))
        if failed:
            PUBLISH_FAILURES.labels("immediate").inc(len(failed))
            log.warning("publish_deferred_to_outbox", count=len(failed), reason=next(iter(failed.values())))
        if published:
            async with self._engine.connect() as connection:
                await self._outbox.delete_published(connection, ids=published)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class OutboxRelay:
    """The safety net: publishes whatever the immediate path left in the outbox."""

    def __init__(
        self,
        *,
        sns: SnsPublisher,
        engine: AsyncEngine,
        poll_interval: float,
        batch_size: int,
        max_backoff: float,
        lease_seconds: float = 30.0,
    ) -> None:
        self._sns, self._engine = sns, engine
        self._poll_interval, self._batch_size = poll_interval, batch_size
        self._max_backoff, self._lease = max_backoff, lease_seconds
        self._outbox = OutboxRepository()

    async def run(self) -> None:
        while True:
            try:
                claimed = await self.relay_once()
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever goes wrong once
                if is_database_unavailable(exc):
                    log.warning("outbox_relay_database_unavailable", error=str(exc))
                else:
                    log.exception("outbox_relay_failed")
                claimed = 0
            # A full batch suggests more are due: go again at once.
            if claimed < self._batch_size:
                await asyncio.sleep(self._poll_interval)

    async def relay_once(self) -> int:
        async with self._engine.connect() as connection:
            rows = await self._outbox.claim_due(connection, limit=self._batch_size, lease_seconds=self._lease)
            OUTBOX_BACKLOG.set(await self._outbox.backlog(connection))
        if not rows:
            return 0
        messages = [message_from_row(row) for row in rows]
        failed = await self._sns.publish(messages)
        published = [message.notification_id for message in messages if message.notification_id not in failed]
        PUBLISHED.labels("relay").inc(len(published))
        async with self._engine.connect() as connection:
            await self._outbox.delete_published(connection, ids=published)
            for row in rows:
                reason = failed.get(row["id"])
                if reason is not None:
                    PUBLISH_FAILURES.labels("relay").inc()
                    delay = compute_backoff(row["outbox_attempts"], base_seconds=1.0, max_seconds=self._max_backoff)
                    await self._outbox.reschedule(connection, notification_id=row["id"], delay_seconds=delay, error=reason)
            OUTBOX_BACKLOG.set(await self._outbox.backlog(connection))
        if failed:
            log.warning("outbox_relay_publish_failed", count=len(failed), reason=next(iter(failed.values())))
        else:
            log.info("outbox_relayed", count=len(published))
        return len(rows)
