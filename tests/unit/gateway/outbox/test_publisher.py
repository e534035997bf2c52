"""gateway/outbox/publisher.py: the immediate path publishes one-offs before bulk, and a burst of
bulk publications never takes a one-off's room; SnsPublisher's calls (ten entries, 256 KiB) and
what it reports SNS did not take."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from gateway.outbox.publisher import OutboxPublisher, Publication, SnsPublisher
from gateway.outbox.sns_batch import BatchEntry
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


def publication(outbox_id: int, lane: Lane = Lane.STANDARD, text: str = "hello") -> Publication:
    message = NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", email="ada@example.com"),
        message=text,
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


class ScriptedBatchClient:
    """Records each PublishBatch call's messages; answers each call from a script (the indexes
    refused, or an exception), then takes everything."""

    def __init__(self, *answers: dict[int, str] | Exception) -> None:
        self.calls: list[list[BatchEntry]] = []
        self.answers = list(answers)

    async def publish_batch(self, topic_arn: str, entries: Sequence[BatchEntry]) -> dict[int, str]:
        assert topic_arn == "arn:topic"
        self.calls.append(list(entries))
        answer = self.answers.pop(0) if self.answers else {}
        if isinstance(answer, Exception):
            raise answer
        return answer


class TestSnsPublisher:
    async def test_ten_entries_a_call(self) -> None:
        sns = ScriptedBatchClient()
        assert await SnsPublisher(sns, "arn:topic").publish([publication(index) for index in range(25)]) == {}  # type: ignore[arg-type]
        assert [len(call) for call in sns.calls] == [10, 10, 5]

    async def test_at_most_256_kib_a_call(self) -> None:
        sns = ScriptedBatchClient()
        big = "x" * 100_000
        await SnsPublisher(sns, "arn:topic").publish([publication(index, text=big) for index in range(5)])  # type: ignore[arg-type]
        assert [len(call) for call in sns.calls] == [2, 2, 1]
        assert all(sum(entry.size() for entry in call) <= 262_144 for call in sns.calls)

    async def test_entries_are_the_messages_and_their_attributes(self) -> None:
        sns = ScriptedBatchClient()
        sent = publication(1)
        await SnsPublisher(sns, "arn:topic").publish([sent])  # type: ignore[arg-type]
        assert sns.calls == [[BatchEntry(sent.message.to_json(), sent.message.sns_message_attributes())]]

    async def test_what_sns_refused_and_the_calls_that_failed_by_outbox_id(self) -> None:
        sns = ScriptedBatchClient({3: "InternalError: try again"}, ConnectionResetError("reset by peer"), {})
        failed = await SnsPublisher(sns, "arn:topic").publish([publication(100 + index) for index in range(25)])  # type: ignore[arg-type]
        assert failed == {103: "InternalError: try again", **{100 + index: "ConnectionResetError: reset by peer" for index in range(10, 20)}}
