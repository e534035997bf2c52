"""ReceiptRepository.apply on a migrated Postgres: statuses, receipts kept once, suppressions, and
the callback events the status changes write (migration 0013's payload: delivered_at, template)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from harness.postgres import PostgresServer
from shared.channels import Channel
from shared.database import Database
from shared.migrate import upgrade
from shared.receipts import Receipt, ReceiptEffect, ReceiptOutcome, ReceiptRepository
from shared.settings import postgres_dsn

AT = datetime(2016, 10, 19, 23, 21, 4, 133000, tzinfo=UTC)


@pytest.fixture(scope="module")
def migrated(postgres_server: PostgresServer) -> str:
    url = postgres_server.create_database()
    upgrade(url)
    return url


@pytest.fixture
async def database(migrated: str) -> AsyncIterator[Database]:
    async with Database(postgres_dsn(migrated), size=2) as opened:
        yield opened


async def sent_email(database: Database, *, template: str | None = None) -> tuple[uuid.UUID, str, str]:
    """A notification whose email delivery is sent: (id, address, provider message id)."""
    notification_id, message_id = uuid.uuid4(), f"ses-{uuid.uuid4()}"
    address = f"{message_id}@example.com"
    async with database.connection() as connection:
        await connection.execute(
            "INSERT INTO notifications (id, recipient, email, message, template, template_version, channels, client, client_serial)"
            " VALUES ($1, 'r', $2, 'hi', $3, $4, ARRAY['email'], 'client-a', '1')",
            notification_id,
            address,
            template,
            1 if template else None,
        )
        await connection.execute(
            "INSERT INTO deliveries (notification_id, channel, status, provider_message_id, sent_at) VALUES ($1, 'email', 'sent', $2, now())",
            notification_id,
            message_id,
        )
    return notification_id, address, message_id


def receipt(message_id: str, effect: ReceiptEffect, *, event_id: str | None = None, **fields: object) -> Receipt:
    return Receipt(
        channel=Channel.EMAIL,
        provider_message_id=message_id,
        provider_event_id=event_id or str(uuid.uuid4()),
        event={"delivered": "Delivery", "failed": "Bounce", "recorded": "Complaint"}[effect.value],
        at=AT,
        effect=effect,
        **fields,  # type: ignore[arg-type]
    )


async def delivery(database: Database, notification_id: uuid.UUID) -> dict:
    async with database.connection() as connection:
        row = await connection.fetchrow("SELECT * FROM deliveries WHERE notification_id = $1", notification_id)
        receipts = await connection.fetchval("SELECT count(*) FROM receipts WHERE notification_id = $1", notification_id)
    return {**row, "receipts": receipts}


class TestApply:
    async def test_delivered_once_however_often_it_is_read(self, database: Database) -> None:
        notification_id, _, message_id = await sent_email(database)
        repository = ReceiptRepository(database)
        first = receipt(message_id, ReceiptEffect.DELIVERED, event_id="e-1")
        assert await repository.apply(first) is ReceiptOutcome.APPLIED
        assert await repository.apply(first) is ReceiptOutcome.DUPLICATE
        row = await delivery(database, notification_id)
        assert (row["status"], row["delivered_at"], row["receipts"]) == ("delivered", AT, 1)

    async def test_a_final_status_does_not_move_but_the_receipt_is_kept(self, database: Database) -> None:
        notification_id, _, message_id = await sent_email(database)
        repository = ReceiptRepository(database)
        await repository.apply(receipt(message_id, ReceiptEffect.FAILED, reason="bounced (Permanent/General)"))
        await repository.apply(receipt(message_id, ReceiptEffect.DELIVERED))
        row = await delivery(database, notification_id)
        assert (row["status"], row["last_error"], row["delivered_at"], row["receipts"]) == ("failed", "bounced (Permanent/General)", None, 2)

    async def test_a_suppression_is_the_snapshots_address_and_is_not_renewed_by_a_duplicate(self, database: Database) -> None:
        notification_id, address, message_id = await sent_email(database)
        repository = ReceiptRepository(database)
        complaint = receipt(message_id, ReceiptEffect.RECORDED, event_id="c-1", suppress="complaint (abuse)")
        await repository.apply(complaint)
        async with database.connection() as connection:
            rows = await connection.fetch("SELECT * FROM suppressions WHERE address = $1", address)
            assert [(r["channel"], r["reason"], r["notification_id"]) for r in rows] == [("email", "complaint (abuse)", notification_id)]
            await connection.execute("DELETE FROM suppressions WHERE address = $1", address)  # lifted
        assert await repository.apply(complaint) is ReceiptOutcome.DUPLICATE
        async with database.connection() as connection:
            assert await connection.fetchval("SELECT count(*) FROM suppressions WHERE address = $1", address) == 0
        assert (await delivery(database, notification_id))["status"] == "sent"

    async def test_an_unknown_message_id_changes_nothing(self, database: Database) -> None:
        outcome = await ReceiptRepository(database).apply(receipt("ses-nobody", ReceiptEffect.DELIVERED, suppress="complaint"))
        assert outcome is ReceiptOutcome.UNKNOWN
        async with database.connection() as connection:
            assert await connection.fetchval("SELECT count(*) FROM receipts WHERE provider_event_id LIKE 'ses-nobody%'") == 0

    async def test_delivered_writes_its_callback_event_with_delivered_at_and_the_template(self, database: Database) -> None:
        async with database.connection() as connection:
            await connection.execute(
                "INSERT INTO callbacks (client, url, events, secret) VALUES ('client-a', 'https://example.com/hook', $1, 'whsec_x')"
                " ON CONFLICT (client) DO NOTHING",
                ["delivery.delivered", "delivery.failed"],
            )
        notification_id, _, message_id = await sent_email(database, template="order-shipped")
        await ReceiptRepository(database).apply(receipt(message_id, ReceiptEffect.DELIVERED))
        async with database.connection() as connection:
            rows = await connection.fetch("SELECT type, data FROM callback_events WHERE notification_id = $1", notification_id)
        [(kind, data)] = [(row["type"], json.loads(row["data"])) for row in rows]
        assert kind == "delivery.delivered"
        assert data["status"] == "delivered"
        assert data["delivered_at"] == "2016-10-19T23:21:04.133000Z"
        assert data["template"] == {"name": "order-shipped", "version": 1}
