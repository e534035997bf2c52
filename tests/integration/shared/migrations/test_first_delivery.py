"""Migration 0017's trigger on a migrated Postgres: a delivery "first" notification moves on to its
next channel in the transaction that records the outcome (the senders' own statements, a receipt),
cancels the rest once one is sent, and writes the callback events of every change (with the
provider in the payload)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from harness.postgres import PostgresServer
from shared.channels import Channel
from shared.database import Database
from shared.deliveries import DeliveryRepository
from shared.migrate import upgrade
from shared.receipts import Receipt, ReceiptEffect, ReceiptRepository
from shared.settings import postgres_dsn

CLIENT = "client-first"


@pytest.fixture(scope="module")
def migrated(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database()
    upgrade(url)
    return url


@pytest.fixture
async def database(migrated: str) -> AsyncIterator[Database]:
    async with Database(postgres_dsn(migrated), size=2) as opened:
        async with opened.connection() as connection:
            await connection.execute(
                "INSERT INTO callbacks (client, url, events, secret) VALUES ($1, 'https://example.com/hook', $2, 'whsec_x')"
                " ON CONFLICT (client) DO NOTHING",
                CLIENT,
                ["delivery.sent", "delivery.failed", "delivery.skipped", "delivery.cancelled", "delivery.delivered"],
            )
        yield opened


async def accepted(database: Database, statuses: dict[str, str], *, delivery: str = "first") -> uuid.UUID:
    """A notification as the accept stores it: channels in the order given, each with its status,
    and no outbox row left (its first channel's publication is done)."""
    notification_id = uuid.uuid4()
    async with database.connection() as connection:
        await connection.execute(
            "INSERT INTO notifications (id, recipient, phone_number, email, slack_id, message, channels, client, client_serial, delivery)"
            " VALUES ($1, 'r', '+14155552671', 'r@example.com', 'U0123456789', 'hi', $2, $3, '1', $4)",
            notification_id,
            list(statuses),
            CLIENT,
            delivery,
        )
        await connection.executemany(
            "INSERT INTO deliveries (notification_id, channel, status) VALUES ($1, $2, $3)",
            [(notification_id, channel, status) for channel, status in statuses.items()],
        )
    return notification_id


async def statuses(database: Database, notification_id: uuid.UUID) -> dict[str, str]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT channel, status FROM deliveries WHERE notification_id = $1", notification_id)
    return {row["channel"]: row["status"] for row in rows}


async def outbox(database: Database, notification_id: uuid.UUID) -> list[list[str]]:
    async with database.connection() as connection:
        rows = await connection.fetch("SELECT channels FROM outbox WHERE notification_id = $1 ORDER BY id", notification_id)
    return [list(row["channels"]) for row in rows]


async def events(database: Database, notification_id: uuid.UUID) -> list[tuple[str, str, dict]]:
    async with database.connection() as connection:
        rows = await connection.fetch(
            "SELECT type, channel, data FROM callback_events WHERE notification_id = $1 ORDER BY occurred_at, channel", notification_id
        )
    return [(row["type"], row["channel"], json.loads(row["data"])) for row in rows]


async def fail(database: Database, notification_id: uuid.UUID, channel: Channel, *, provider: str = "twilio") -> None:
    """What a sender does with a permanent failure: claim, then settle ``failed``."""
    deliveries = DeliveryRepository(database)
    claim = await deliveries.claim(notification_id=notification_id, channel=channel, claimed_by="test", lease_seconds=30)
    assert claim.claimed, claim
    assert await deliveries.mark_failed(
        notification_id=notification_id, channel=channel, claimed_by="test", reason="21211: not a valid phone number", provider=provider
    )


async def send(database: Database, notification_id: uuid.UUID, channel: Channel, *, provider: str, message_id: str | None = None) -> None:
    deliveries = DeliveryRepository(database)
    claim = await deliveries.claim(notification_id=notification_id, channel=channel, claimed_by="test", lease_seconds=30)
    assert claim.claimed, claim
    await deliveries.mark_sent(
        notification_id=notification_id, channel=channel, provider_message_id=message_id or f"m-{uuid.uuid4()}", provider=provider
    )


def email_receipt(message_id: str, event: str, effect: ReceiptEffect, *, reason: str | None = None) -> Receipt:
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=str(uuid.uuid4()),
        event=event,
        at=datetime.now(UTC),
        effect=effect,
        reason=reason,
    )


class TestFailureMovesOn:
    async def test_a_failure_releases_the_next_channel_with_its_outbox_row(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "pending", "email": "waiting", "slack": "waiting"})
        await fail(database, notification_id, Channel.SMS)
        assert await statuses(database, notification_id) == {"sms": "failed", "email": "pending", "slack": "waiting"}
        assert await outbox(database, notification_id) == [["email"]]

    async def test_skipped_at_accept_are_passed_over_by_the_next_failure(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "pending", "email": "skipped", "slack": "waiting"})
        await fail(database, notification_id, Channel.SMS)
        assert await statuses(database, notification_id) == {"sms": "failed", "email": "skipped", "slack": "pending"}
        assert await outbox(database, notification_id) == [["slack"]]

    async def test_the_order_is_the_notifications_channels_not_the_apis(self, database: Database) -> None:
        notification_id = await accepted(database, {"slack": "pending", "email": "waiting", "sms": "waiting"})
        await fail(database, notification_id, Channel.SLACK, provider="slack")
        assert await statuses(database, notification_id) == {"slack": "failed", "email": "pending", "sms": "waiting"}

    async def test_the_last_failure_ends_it_with_nothing_released(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "failed", "email": "pending"})
        await fail(database, notification_id, Channel.EMAIL, provider="ses")
        assert await statuses(database, notification_id) == {"sms": "failed", "email": "failed"}
        assert await outbox(database, notification_id) == []

    async def test_a_transient_failure_moves_nothing(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "pending", "email": "waiting"})
        deliveries = DeliveryRepository(database)
        assert (await deliveries.claim(notification_id=notification_id, channel=Channel.SMS, claimed_by="test", lease_seconds=30)).claimed
        assert await deliveries.release(notification_id=notification_id, channel=Channel.SMS, claimed_by="test", reason="503")
        assert await statuses(database, notification_id) == {"sms": "pending", "email": "waiting"}
        assert await outbox(database, notification_id) == []

    async def test_a_delivery_all_notification_is_left_alone(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "pending", "email": "pending"}, delivery="all")
        await fail(database, notification_id, Channel.SMS)
        assert await statuses(database, notification_id) == {"sms": "failed", "email": "pending"}
        assert await outbox(database, notification_id) == []


class TestSentCancelsTheRest:
    async def test_sent_cancels_every_waiting_channel_with_its_event(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "pending", "email": "waiting", "slack": "waiting"})
        await send(database, notification_id, Channel.SMS, provider="twilio")
        assert await statuses(database, notification_id) == {"sms": "sent", "email": "cancelled", "slack": "cancelled"}
        assert await outbox(database, notification_id) == []
        found = await events(database, notification_id)
        assert sorted((kind, channel) for kind, channel, _ in found) == [
            ("delivery.cancelled", "email"),
            ("delivery.cancelled", "slack"),
            ("delivery.sent", "sms"),
        ]
        data = {channel: data for _, channel, data in found}
        assert data["sms"]["provider"] == "twilio"
        assert data["email"]["last_error"] == "not needed: sms was sent"
        assert "provider" not in data["email"]  # never attempted: no provider

    async def test_the_fallback_sent_cancels_what_is_left(self, database: Database) -> None:
        notification_id = await accepted(database, {"sms": "pending", "email": "waiting", "slack": "waiting"})
        await fail(database, notification_id, Channel.SMS)
        await send(database, notification_id, Channel.EMAIL, provider="ses")
        assert await statuses(database, notification_id) == {"sms": "failed", "email": "sent", "slack": "cancelled"}
        kinds = [(kind, channel, data.get("provider")) for kind, channel, data in await events(database, notification_id)]
        assert ("delivery.failed", "sms", "twilio") in kinds and ("delivery.sent", "email", "ses") in kinds

    async def test_a_receipt_failing_the_sent_one_releases_the_next_again(self, database: Database) -> None:
        notification_id = await accepted(database, {"email": "pending", "sms": "waiting"})
        message_id = f"ses-{uuid.uuid4()}"
        await send(database, notification_id, Channel.EMAIL, provider="ses", message_id=message_id)
        assert await statuses(database, notification_id) == {"email": "sent", "sms": "cancelled"}
        await ReceiptRepository(database).apply(
            email_receipt(message_id, "Bounce", ReceiptEffect.FAILED, reason="bounced (Permanent/General): 550 user unknown")
        )
        assert await statuses(database, notification_id) == {"email": "failed", "sms": "pending"}
        assert await outbox(database, notification_id) == [["sms"]]

    async def test_a_delivered_receipt_changes_nothing_more(self, database: Database) -> None:
        notification_id = await accepted(database, {"email": "pending", "sms": "waiting"})
        message_id = f"ses-{uuid.uuid4()}"
        await send(database, notification_id, Channel.EMAIL, provider="ses", message_id=message_id)
        await ReceiptRepository(database).apply(email_receipt(message_id, "Delivery", ReceiptEffect.DELIVERED))
        assert await statuses(database, notification_id) == {"email": "delivered", "sms": "cancelled"}
