"""The outbox relay: publishes whatever the immediate path left in the outbox, and scheduled
notifications when they are due (the package docstring says what happens to a row on success,
failure, a crash and at shutdown).

When it sleeps: after a pass that claimed less than a full batch, until the next row is due or
for the poll interval, whichever is sooner, so a scheduled row is published at its time rather
than up to a poll interval late. A notification this replica schedules sooner than that wakes
it (``expect``); one another replica schedules is found at the next pass (that replica's own
relay wakes for it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Gauge

from gateway.notifications.stored import StoredNotification
from gateway.outbox.publisher import OUTBOX_BACKLOG, PUBLISH_FAILURES, PUBLISHED, Publication, SnsPublisher
from gateway.outbox.repository import OutboxRepository, OutboxState
from shared.backoff import outbox_retry
from shared.database import Database, is_database_unavailable
from shared.logging import get_logger

log = get_logger(__name__)

OUTBOX_SCHEDULED = Gauge("gateway_outbox_scheduled", "Scheduled notifications waiting in the outbox for their release time.")


class OutboxRelay:
    def __init__(
        self,
        *,
        sns: SnsPublisher,
        database: Database,
        poll_interval: float,
        batch_size: int,
        max_backoff: float,
        lease_seconds: float = 30.0,
    ) -> None:
        self._sns, self._database = sns, database
        self._poll_interval, self._batch_size = poll_interval, batch_size
        self._retry, self._lease = outbox_retry(max_seconds=max_backoff), lease_seconds
        self._outbox = OutboxRepository()
        self._woken = asyncio.Event()
        self._wake_at = 0.0  # the event loop's clock: when the current sleep ends

    async def run(self) -> None:
        while True:
            next_due_in: float | None = None
            try:
                claimed, next_due_in = await self.relay_once()
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever goes wrong once
                if is_database_unavailable(exc):
                    log.warning("outbox_relay_database_unavailable", error=str(exc))
                else:
                    log.exception("outbox_relay_failed")
                claimed = 0
            # A full batch suggests more are due: go again at once.
            if claimed < self._batch_size:
                await self._sleep(self._poll_interval if next_due_in is None else max(0.0, min(self._poll_interval, next_due_in)))

    def expect(self, release_at: datetime) -> None:
        """A notification accepted here is due at ``release_at``: wake up for it if the current
        sleep would end later (the pass after waking sleeps until it is due)."""
        loop = asyncio.get_running_loop()
        if loop.time() + (release_at - datetime.now(UTC)).total_seconds() < self._wake_at:
            self._woken.set()

    async def _sleep(self, seconds: float) -> None:
        self._wake_at = asyncio.get_running_loop().time() + seconds
        self._woken.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)

    async def relay_once(self) -> tuple[int, float | None]:
        """One pass: claim the due rows, publish them, settle them. Returns how many it claimed
        and in how many seconds the next row is due (None: the outbox is empty)."""
        async with self._database.connection() as connection:
            rows = await self._outbox.claim_due(connection, limit=self._batch_size, lease_seconds=self._lease)
            if not rows:
                return 0, _observed(await self._outbox.state(connection))
        await self.publish_claimed(rows)
        # Read after publishing: what is left (and when it is due) once these rows are settled.
        async with self._database.connection() as connection:
            state = await self._outbox.state(connection)
        return len(rows), _observed(state)

    async def publish_claimed(self, rows: Sequence[Any]) -> list[int]:
        """Publish outbox rows this process holds (claimed, their next attempt pushed out by a
        lease), each with its notification's columns; delete the ones SNS took and push out the
        others' next attempt. Returns the outbox ids published."""
        publications = [
            Publication(row["outbox_id"], StoredNotification.from_row(row).sns_message(row["publication_channels"])) for row in rows
        ]
        failed = await self._sns.publish(publications)
        published = [publication.outbox_id for publication in publications if publication.outbox_id not in failed]
        retries = [
            (row["outbox_id"], self._retry.delay(row["outbox_attempts"]), failed[row["outbox_id"]])
            for row in rows
            if row["outbox_id"] in failed
        ]
        PUBLISHED.labels("relay").inc(len(published))
        PUBLISH_FAILURES.labels("relay").inc(len(retries))
        async with self._database.connection() as connection:
            await self._outbox.delete_published(connection, ids=published)
            await self._outbox.reschedule(connection, retries=retries)
        if failed:
            log.warning("outbox_relay_publish_failed", count=len(failed), reason=next(iter(failed.values())))
        else:
            log.info("outbox_relayed", count=len(published))
        return published


def _observed(state: OutboxState) -> float | None:
    OUTBOX_BACKLOG.set(state.backlog)
    OUTBOX_SCHEDULED.set(state.scheduled)
    return state.next_due_in
