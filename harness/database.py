"""The system's tables as tests and benchmarks see them: what the gateway writes, what the senders record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from harness.postgres import fetch, run_in_thread
from harness.waiting import wait_until
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.settings import postgres_dsn
from shared.channels import Channel


class Database:
    """Synchronous access to one database; every call runs asyncpg in a thread with its own loop."""

    def __init__(self, url: str) -> None:
        self.url = url

    def fetch(self, query: str, *args: Any) -> list[dict[str, Any]]:
        return fetch(self.url, query, *args)

    def insert_notifications(self, messages: list[NotificationMessage]) -> None:
        """What the gateway writes when it accepts notifications: one row each, plus one
        ``pending`` delivery per addressed channel, in one transaction."""

        async def run() -> None:
            connection = await asyncpg.connect(postgres_dsn(self.url))
            try:
                async with connection.transaction():
                    await connection.executemany(
                        "INSERT INTO notifications (id, recipient, phone_number, email, slack_id, message, subject,"
                        " channels, client, client_serial, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                        [
                            (
                                m.notification_id,
                                m.recipient.name,
                                m.recipient.phone_number,
                                m.recipient.email,
                                m.recipient.slack_id,
                                m.message,
                                m.subject,
                                [c.value for c in m.channels],
                                m.client,
                                "01",
                                m.created_at,
                            )
                            for m in messages
                        ],
                    )
                    await connection.executemany(
                        "INSERT INTO deliveries (notification_id, channel) VALUES ($1, $2)",
                        [(m.notification_id, c.value) for m in messages for c in m.channels],
                    )
            finally:
                await connection.close()

        run_in_thread(run())

    def deliveries(self, notification_id: uuid.UUID) -> dict[str, dict[str, Any]]:
        rows = self.fetch("SELECT * FROM deliveries WHERE notification_id = $1", notification_id)
        return {row["channel"]: row for row in rows}

    def delivery(self, notification_id: uuid.UUID, channel: Channel) -> dict[str, Any]:
        return self.deliveries(notification_id)[channel.value]

    def wait_for_status(
        self, notification_id: uuid.UUID, channel: Channel, status: str, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            row = self.delivery(notification_id, channel)
            return row if row["status"] == status else None

        return wait_until(settled, timeout=timeout, what=f"{channel.value} delivery of {notification_id} to be {status}")

    def wait_for_all(self, ids: list[uuid.UUID], channel: Channel, status: str, *, timeout: float = 60.0) -> None:
        def done() -> bool:
            rows = self.fetch(
                "SELECT count(*) AS n FROM deliveries WHERE notification_id = ANY($1) AND channel = $2 AND status = $3",
                ids,
                channel.value,
                status,
            )
            return rows[0]["n"] == len(ids)

        wait_until(done, timeout=timeout, interval=0.5, what=f"{len(ids)} {channel.value} deliveries to be {status}")


def make_notification(
    *,
    channels: tuple[Channel, ...],
    name: str = "ada",
    phone_number: str | None = "+14155550100",
    email: str | None = "ada@example.com",
    slack_id: str | None = "C0ADA",
    subject: str | None = "Test notification",
    text: str | None = None,
) -> NotificationMessage:
    """A notification as the gateway would have accepted it (the message it publishes)."""
    notification_id = uuid.uuid4()
    return NotificationMessage(
        notification_id=notification_id,
        recipient=RecipientSnapshot(name=name, phone_number=phone_number, email=email, slack_id=slack_id),
        message=text or f"Hello {name}, this is {notification_id}",
        subject=subject,
        channels=list(channels),
        client="sender-tests",
        created_at=datetime.now(UTC),
    )
