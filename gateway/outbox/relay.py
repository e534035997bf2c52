"""The outbox relay: publishes whatever the immediate path left in the outbox (the package
docstring says what happens to a row on success, failure, a crash and at shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from gateway.notifications.stored import StoredNotification
from gateway.outbox.publisher import OUTBOX_BACKLOG, PUBLISH_FAILURES, PUBLISHED, Publication, SnsPublisher
from gateway.outbox.repository import OutboxRepository
from shared.backoff import outbox_retry
from shared.database import Database, is_database_unavailable
from shared.logging import get_logger

log = get_logger(__name__)


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
        """One pass: claim the due rows, publish them, settle them. Returns how many it claimed."""
        async with self._database.connection() as connection:
            rows = await self._outbox.claim_due(connection, limit=self._batch_size, lease_seconds=self._lease)
            OUTBOX_BACKLOG.set(await self._outbox.backlog(connection))
        if not rows:
            return 0
        await self.publish_claimed(rows)
        return len(rows)

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
            OUTBOX_BACKLOG.set(await self._outbox.backlog(connection))
        if failed:
            log.warning("outbox_relay_publish_failed", count=len(failed), reason=next(iter(failed.values())))
        else:
            log.info("outbox_relayed", count=len(published))
        return published
