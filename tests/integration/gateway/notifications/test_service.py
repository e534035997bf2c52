"""gateway/notifications/service.py: accepting N notifications in one statement (``accept``, the
N=1 case and the grouped single accepts), against real Postgres and SNS on the moto server.

Each test runs the real service with its real outbox publisher on a database of its own: what
the statement stored is read back from Postgres, and an outbox row that disappears is one SNS
confirmed (the publisher deletes a row only then).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway.auth import ClientIdentity
from gateway.errors import BadRequestError, ConflictError
from gateway.notifications.schemas import NotificationCreate
from gateway.notifications.service import Acceptance, AcceptOutcome, AcceptRequest, NotificationService
from gateway.outbox.publisher import OutboxPublisher, SnsPublisher
from gateway.outbox.sns_batch import SnsBatchClient
from gateway.templates.service import TemplateService
from shared.aws import aws_clients
from shared.database import Database
from shared.migrate import upgrade
from shared.settings import ServiceSettings
from harness.aws import QueueReader
from harness.postgres import PostgresServer
from shared.topology import topic_arn
from stack.moto import MotoServer

CLIENT = ClientIdentity(common_name="batch-client", roles=frozenset({"notifications"}), serial="1f", fingerprint="00")
CONTACTS = {
    "all-three": ("+14155552671", "all@example.com", "U0123456789"),
    "email-only": (None, "only@example.com", None),
}


@dataclass
class Accepting:
    service: NotificationService
    database: Database
    publisher: OutboxPublisher

    async def fetchval(self, query: str, *args: object) -> object:
        async with self.database.connection() as connection:
            return await connection.fetchval(query, *args)

    async def wait_until_published(self, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.fetchval("SELECT count(*) FROM outbox"):
            assert asyncio.get_running_loop().time() < deadline, "SNS did not confirm every outbox row in time"
            await asyncio.sleep(0.2)


@pytest.fixture
async def accepting(postgres_server: PostgresServer, moto: MotoServer, prepared: dict[str, str]) -> AsyncIterator[Accepting]:
    database_url = postgres_server.create_database()
    await asyncio.to_thread(upgrade, database_url)
    settings = ServiceSettings(database_url=database_url, aws_endpoint_url=moto.endpoint_url)
    database = await Database.for_service(settings).open()
    async with database.connection() as connection:
        await connection.executemany(
            "INSERT INTO recipients (name, phone_number, email, slack_id) VALUES ($1, $2, $3, $4)",
            [(name, *contacts) for name, contacts in CONTACTS.items()],
        )
    async with aws_clients(settings, "sns") as sns, SnsBatchClient.for_client(sns) as publish_batch:
        publisher = OutboxPublisher(sns=SnsPublisher(publish_batch, await topic_arn(sns)), database=database, hand_over_after=60)
        publisher.start()
        service = NotificationService(database=database, publisher=publisher, outbox_grace_seconds=60, templates=TemplateService())
        yield Accepting(service, database, publisher)
        await publisher.close()
    await database.close()
    postgres_server.drop_database(database_url)


def request(recipient: str, *, channels: list[str] | None = None, key: str | None = None, message: str = "hello") -> AcceptRequest:
    body = {"recipient": recipient, "message": message, **({"channels": channels} if channels else {})}
    return AcceptRequest(NotificationCreate.model_validate(body), idempotency_key=key)


class TestOne:
    async def test_stored_with_its_deliveries_and_outbox_row_then_published(self, accepting: Accepting, queues: QueueReader) -> None:
        [outcome] = await accepting.service.accept([request("all-three", channels=["sms", "slack"])], client=CLIENT)
        assert isinstance(outcome, Acceptance) and not outcome.replayed
        stored = outcome.notification
        assert (stored.recipient.phone_number, stored.recipient.email, stored.channels) == ("+14155552671", "all@example.com", ["sms", "slack"])
        async with accepting.database.connection() as connection:
            row = await connection.fetchrow("SELECT * FROM notifications WHERE id = $1", stored.id)
            deliveries = await connection.fetch("SELECT channel, status FROM deliveries WHERE notification_id = $1 ORDER BY channel", stored.id)
            outbox = await connection.fetch("SELECT channels FROM outbox WHERE notification_id = $1", stored.id)
        assert (row["client"], row["client_serial"], row["created_at"]) == ("batch-client", "1f", stored.created_at)
        assert [tuple(d) for d in deliveries] == [("slack", "pending"), ("sms", "pending")]
        assert [list(o["channels"]) for o in outbox] in ([["sms", "slack"]], [])  # [] once SNS confirmed it
        await accepting.wait_until_published()
        published = queues.wait_for(str(stored.id), queues=2, timeout=15)
        assert sorted(queue for queue, _, _ in published) == ["slack_notifications", "sms_notifications"]

    async def test_refusals_store_nothing(self, accepting: Accepting) -> None:
        unknown, missing = await accepting.service.accept([request("nobody"), request("email-only", channels=["email", "sms"])], client=CLIENT)
        assert isinstance(unknown, BadRequestError) and (unknown.message, unknown.field) == ("unknown recipient: 'nobody'", "recipient")
        assert isinstance(missing, BadRequestError) and missing.field == "channels"
        assert missing.message == "recipient 'email-only' has no sms contact; its channels are: email"
        assert await accepting.fetchval("SELECT count(*) FROM notifications") == 0
        assert await accepting.fetchval("SELECT count(*) FROM outbox") == 0


class TestMany:
    async def test_a_thousand_mixed_in_one_statement(self, accepting: Accepting) -> None:
        # An earlier request whose key the batch replays (same body) and conflicts with (another body).
        [earlier] = await accepting.service.accept([request("all-three", key="earlier")], client=CLIENT)
        assert isinstance(earlier, Acceptance)
        kinds = ["all", "subset", "unknown", "missing", "new key", "replay", "conflict", "twice"]
        requests, expected = [], []
        for index in range(1000):
            kind = kinds[index % len(kinds)]
            if kind == "all":
                requests.append(request("all-three", message=f"m{index}"))
            elif kind == "subset":
                requests.append(request("all-three", channels=["email"], message=f"m{index}"))
            elif kind == "unknown":
                requests.append(request(f"nobody-{index}"))
            elif kind == "missing":
                requests.append(request("email-only", channels=["slack"]))
            elif kind == "new key":
                requests.append(request("email-only", key=f"k{index}", message=f"m{index}"))
            elif kind == "replay":
                requests.append(request("all-three", key="earlier"))
            elif kind == "conflict":
                requests.append(request("all-three", key="earlier", message="another body"))
            else:  # the same new key twice in the batch, the same body: the second is a replay of the first
                requests.append(request("email-only", key=f"twice{index}", message=f"m{index}"))
                requests.append(request("email-only", key=f"twice{index}", message=f"m{index}"))
                expected.append("twice")
                kind = "twice again"
            expected.append(kind)

        outcomes = await accepting.service.accept(requests, client=CLIENT)

        assert [_kind(outcome, earlier) for outcome in outcomes] == [_expected(kind) for kind in expected]
        new = [outcome for outcome in outcomes if isinstance(outcome, Acceptance) and not outcome.replayed]
        assert len(new) == Counter(expected)["all"] * 4  # all, subset, new key, the first of twice
        assert len({outcome.id for outcome in new}) == len(new)
        for first, second in zip(outcomes, outcomes[1:]):  # the second of a pair replays the first
            if isinstance(second, Acceptance) and second.replayed and second.id != earlier.id:
                assert isinstance(first, Acceptance) and first.id == second.id and first.notification == second.notification
        assert await accepting.fetchval("SELECT count(*) FROM notifications") == len(new) + 1
        stored_channels = sum(len(outcome.notification.channels) for outcome in new)
        assert await accepting.fetchval("SELECT count(*) FROM deliveries") == stored_channels + 3
        await accepting.wait_until_published()

    async def test_concurrent_single_accepts_share_statements_and_each_gets_its_own(self, accepting: Accepting) -> None:
        outcomes = await asyncio.gather(
            *(accepting.service.accept_one(request("email-only", message=f"c{index}"), client=CLIENT) for index in range(200)),
            accepting.service.accept_one(request("nobody"), client=CLIENT),
            return_exceptions=True,
        )
        *accepted, refused = outcomes
        assert isinstance(refused, BadRequestError)
        assert all(isinstance(outcome, Acceptance) for outcome in accepted)
        assert [outcome.notification.message for outcome in accepted] == [f"c{index}" for index in range(200)]  # type: ignore[union-attr]
        assert len({outcome.id for outcome in accepted}) == 200  # type: ignore[union-attr]
        assert await accepting.fetchval("SELECT count(*) FROM notifications") == 200
        await accepting.wait_until_published()


def _kind(outcome: AcceptOutcome, earlier: Acceptance) -> str:
    if isinstance(outcome, ConflictError):
        return "conflict"
    if isinstance(outcome, BadRequestError):
        return outcome.field or "bad request"
    assert isinstance(outcome, Acceptance)
    if outcome.replayed:
        return "replay of earlier" if outcome.id == earlier.id else "replay"
    return "new"


def _expected(kind: str) -> str:
    return {
        "all": "new",
        "subset": "new",
        "unknown": "recipient",
        "missing": "channels",
        "new key": "new",
        "replay": "replay of earlier",
        "conflict": "conflict",
        "twice": "new",
        "twice again": "replay",
    }[kind]
