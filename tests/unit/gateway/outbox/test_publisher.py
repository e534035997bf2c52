"""gateway/outbox/publisher.py: the immediate path publishes one-offs before bulk, and a burst of
bulk publications never takes a one-off's room."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.outbox.publisher import OutboxPublisher, Publication
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.topology import Lane


class RecordingSns:
    def __init__(self) -> None:
        self.calls: list[list[Lane]] = []

    async def publish(self, publications: Sequence[Publication]) -> dict[int, str]:
        self.calls.append([publication.message.lane for publication in publications])
        return {}


class FakeConnection:
    async def execute(self, *_args: Any) -> None:
        return None


class FakeDatabase:
    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[FakeConnection]:
        yield FakeConnection()


def publication(outbox_id: int, lane: Lane) -> Publication:
    message = NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", email="ada@example.com"),
        message="hello",
        channels=["email"],
        client="c",
        created_at=datetime.now(UTC),
        lane=lane,
    )
    return Publication(outbox_id, message)


class TestLanes:
    async def test_a_one_off_queued_after_a_batch_is_published_first(self) -> None:
        sns = RecordingSns()
        publisher = OutboxPublisher(sns=sns, database=FakeDatabase(), hand_over_after=60, workers=1)  # type: ignore[arg-type]
        for index in range(30):
            publisher.submit(publication(index, Lane.BULK))
        publisher.submit(publication(99, Lane.STANDARD))
        publisher.start()
        await publisher.close()
        assert sns.calls[0][0] is Lane.STANDARD
        assert sum(len(call) for call in sns.calls) == 31

    async def test_bulk_beyond_its_room_is_left_to_the_relay_and_one_offs_still_fit(self) -> None:
        sns = RecordingSns()
        publisher = OutboxPublisher(sns=sns, database=FakeDatabase(), hand_over_after=60, workers=1, capacity=5)  # type: ignore[arg-type]
        for index in range(8):
            publisher.submit(publication(index, Lane.BULK))
        publisher.submit(publication(100, Lane.STANDARD))
        publisher.start()
        await publisher.close()
        published = [lane for call in sns.calls for lane in call]
        assert published.count(Lane.BULK) == 5 and published.count(Lane.STANDARD) == 1
