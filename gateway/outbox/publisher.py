"""Publishing outbox rows to SNS: the SNS calls, and the immediate path right after a commit
(the package docstring tells the whole story)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from gateway.outbox.repository import OutboxRepository
from gateway.outbox.sns_batch import SNS_BATCH_LIMIT, BatchEntry, SnsBatchClient
from shared.batching import StatementBatcher
from shared.database import Database
from shared.logging import get_logger
from shared.messages import MAX_SNS_MESSAGE_BYTES, NotificationMessage
from shared.topology import Lane

log = get_logger(__name__)

PUBLISHED = Counter("gateway_notifications_published_total", "Notifications SNS confirmed.", ["path"])
PUBLISH_FAILURES = Counter("gateway_publish_failures_total", "Notifications SNS did not take.", ["path"])
OUTBOX_BACKLOG = Gauge("gateway_outbox_backlog", "Accepted notifications not yet confirmed by SNS.")


@dataclass(frozen=True, slots=True)
class Publication:
    """One outbox row's SNS message."""

    outbox_id: int
    message: NotificationMessage


class SnsPublisher:
    """Publishes to the topic; returns the publications SNS did not take (outbox id -> reason).

    Every call is a PublishBatch (``sns_batch.py``), a lone publication's too: of up to ten
    messages and, as SNS requires, of at most 256 KiB together."""

    def __init__(self, sns: SnsBatchClient, topic_arn: str) -> None:
        self._sns, self.topic_arn = sns, topic_arn

    async def publish(self, publications: Sequence[Publication]) -> dict[int, str]:
        failed: dict[int, str] = {}
        for call in _calls(publications):
            try:
                refused = await self._sns.publish_batch(self.topic_arn, [entry for _, entry in call])
            except Exception as exc:  # noqa: BLE001 - any failure leaves the rows for the relay
                reason = f"{type(exc).__name__}: {exc}"
                failed.update({publication.outbox_id: reason for publication, _ in call})
                continue
            failed.update({call[index][0].outbox_id: reason for index, reason in refused.items()})
        return failed


def _calls(publications: Sequence[Publication]) -> Iterator[list[tuple[Publication, BatchEntry]]]:
    """The publications grouped into PublishBatch calls, each with its entry."""
    call: list[tuple[Publication, BatchEntry]] = []
    size = 0
    for publication in publications:
        entry = BatchEntry(publication.message.to_json(), publication.message.sns_message_attributes())
        entry_size = entry.size()
        if call and (len(call) == SNS_BATCH_LIMIT or size + entry_size > MAX_SNS_MESSAGE_BYTES):
            yield call
            call, size = [], 0
        call.append((publication, entry))
        size += entry_size
    if call:
        yield call


class OutboxPublisher:
    """The immediate path: a few workers drain an in-memory queue into PublishBatch calls and
    delete the rows SNS confirmed."""

    # Much of an SNS call's CPU is per call (its HTTP exchange, signing, parsing the answer, the
    # DELETE after it), so batches should be full. One worker at a time gathers a
    # batch, waiting up to this long for ten messages, while the others publish theirs: from about
    # 200 notifications a second every call carries ten (a tenth of the calls and outbox deletes),
    # and a lone notification reaches SNS this much later (the 201 does not wait for it; delivery
    # takes longer than this anyway).
    BATCH_FILL_SECONDS = 0.05

    def __init__(
        self, *, sns: SnsPublisher, database: Database, hand_over_after: float, workers: int = 4, capacity: int = 10_000
    ) -> None:
        self._sns, self._database, self._hand_over_after = sns, database, hand_over_after
        # One-offs before bulk: a batch's thousand publications must not delay a one-off queued
        # after them, nor take its room (each lane holds up to ``capacity``).
        self._queue: asyncio.PriorityQueue[_Queued] = asyncio.PriorityQueue()
        self._capacity = capacity
        self._queued = {lane: 0 for lane in Lane}
        self._sequence = itertools.count()
        self._outbox = OutboxRepository()
        self._gathering = asyncio.Lock()
        self._batch_full: asyncio.Future[None] | None = None  # set while a worker waits for a batch to fill
        self._workers: list[asyncio.Task[None]] = []
        self._worker_count = workers
        self._deletes: StatementBatcher[list[int], None] = StatementBatcher(self._delete_published)

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work(), name=f"outbox-publisher-{n}") for n in range(self._worker_count)]

    def submit(self, publication: Publication) -> None:
        """Publish a committed outbox row soon (the caller does not wait for SNS)."""
        lane = publication.message.lane
        if self._queued[lane] >= self._capacity:
            # Under a long SNS outage (or a burst of batches): the row is in the outbox, the relay
            # will publish it.
            return
        self._queued[lane] += 1
        self._queue.put_nowait(_Queued(_LANE_ORDER[lane], next(self._sequence), time.monotonic(), publication))
        # The gathering worker holds one publication already: nine more make a full batch.
        if self._batch_full is not None and self._queue.qsize() >= SNS_BATCH_LIMIT - 1:
            _settle(self._batch_full)

    async def close(self, timeout: float = 5.0) -> None:
        """Publish what is queued (for up to ``timeout``); anything left stays in the outbox."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)

    async def _gather(self) -> list[_Queued]:
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
        for queued in batch:
            self._queued[queued.publication.message.lane] -= 1
        return batch

    async def _work(self) -> None:
        while True:
            async with self._gathering:
                batch = await self._gather()
            # What waited past the outbox grace period is the relay's now: publishing it here
            # as well would send it twice.
            deadline = time.monotonic() - self._hand_over_after
            fresh = [queued.publication for queued in batch if queued.queued_at > deadline]
            try:
                if fresh:
                    await self._publish(fresh)
            except Exception:  # noqa: BLE001 - the relay retries from the outbox
                log.exception("immediate_publish_failed", count=len(fresh))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _publish(self, batch: list[Publication]) -> None:
        failed = await self._sns.publish(batch)
        published = [publication.outbox_id for publication in batch if publication.outbox_id not in failed]
        PUBLISHED.labels("immediate").inc(len(published))
        if failed:
            PUBLISH_FAILURES.labels("immediate").inc(len(failed))
            log.warning("publish_deferred_to_outbox", count=len(failed), reason=next(iter(failed.values())))
        if published:
            await self._deletes.submit(published)

    async def _delete_published(self, calls: list[list[int]]) -> list[None]:
        """One DELETE for the rows of every worker's call SNS confirmed meanwhile: a statement's
        round trip costs the gateway more CPU than its rows do (8.8 % of it, a DELETE per call)."""
        async with self._database.connection() as connection:
            await self._outbox.delete_published(connection, ids=[outbox_id for ids in calls for outbox_id in ids])
        return [None] * len(calls)


# The order the lanes are published in: one-offs first.
_LANE_ORDER = {Lane.STANDARD: 0, Lane.BULK: 1}


@dataclass(frozen=True, order=True, slots=True)
class _Queued:
    """A publication waiting for a worker, in publishing order: lane, then arrival."""

    lane_order: int
    sequence: int
    queued_at: float = field(compare=False)
    publication: Publication = field(compare=False)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
