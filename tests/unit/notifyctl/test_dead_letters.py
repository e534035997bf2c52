"""notifyctl/dead_letters.py: the StartMessageMoveTask redrive, which moto does not implement
(the copy redrive is tested against moto in tests/integration/notifyctl/)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from notifyctl.dead_letters import DeadLetterQueues
from notifyctl.errors import FailedError
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.topology import Channel, Lane


def notification(channel: Channel = Channel.SLACK) -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", slack_id="C0ADA0001"),
        message="hello",
        channels=[channel],
        client="tests",
        created_at=datetime.now(UTC),
    )


class FakeSqs:
    """Just enough SQS for a redrive: one DLQ, its source queue, and optionally move tasks."""

    def __init__(self, bodies: list[str], *, move_tasks: bool) -> None:
        self.dlq = {f"m{i}": body for i, body in enumerate(bodies)}
        self.hidden: set[str] = set()
        self.sent: list[str] = []
        self.calls: list[str] = []
        self.move_tasks = move_tasks
        self._polls = 0

    async def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 - boto3's names
        return {"QueueUrl": f"https://sqs/{QueueName}"}

    async def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:  # noqa: N803
        if AttributeNames == ["QueueArn"]:
            return {"Attributes": {"QueueArn": "arn:" + QueueUrl.rsplit("/", 1)[1]}}
        visible = len([m for m in self.dlq if m not in self.hidden])
        return {"Attributes": {"ApproximateNumberOfMessages": str(visible), "ApproximateNumberOfMessagesNotVisible": "0"}}

    async def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, VisibilityTimeout: int, **_: Any) -> dict[str, Any]:  # noqa: N803
        found = [m for m in self.dlq if m not in self.hidden][:MaxNumberOfMessages]
        if VisibilityTimeout:
            self.hidden.update(found)
        self.calls.append(f"receive {len(found)}")
        return {"Messages": [{"MessageId": m, "ReceiptHandle": f"rh-{m}", "Body": self.dlq[m], "Attributes": {}} for m in found]}

    async def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        for entry in Entries:
            self.hidden.discard(entry["ReceiptHandle"].removeprefix("rh-"))
        self.calls.append(f"visible {len(Entries)}")
        return {}

    async def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        self.sent.extend(entry["MessageBody"] for entry in Entries)
        self.calls.append(f"send {len(Entries)}")
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    async def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        for entry in Entries:
            message_id = entry["ReceiptHandle"].removeprefix("rh-")
            self.dlq.pop(message_id)
            self.hidden.discard(message_id)
        self.calls.append(f"delete {len(Entries)}")
        return {}

    async def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:  # noqa: N803
        if not self.move_tasks:
            raise RuntimeError("500 Internal Server Error")
        if "start" not in self.calls:
            return {"Results": []}
        self._polls += 1
        done = self._polls >= 2
        if done:
            self.sent.extend(self.dlq.values())
            self.dlq.clear()
        return {"Results": [{"TaskHandle": "t1", "Status": "COMPLETED" if done else "RUNNING",
                             "ApproximateNumberOfMessagesMoved": 3 if done else 1, "ApproximateNumberOfMessagesToMove": 3}]}

    async def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, str]:  # noqa: N803
        assert (SourceArn, DestinationArn) == ("arn:slack_notifications_dlq", "arn:slack_notifications")
        assert not self.hidden, "every message is visible again before the task starts"
        self.calls.append("start")
        return {"TaskHandle": "t1"}


class Queues(DeadLetterQueues):
    """The SQS choreography for real; the two database statements recorded instead."""

    def __init__(self, sqs: FakeSqs, *, late: list[str] | None = None) -> None:
        super().__init__(sqs=sqs, database=None)  # type: ignore[arg-type]
        self.reset: list[uuid.UUID] = []
        self._late = late or []
        self._fake = sqs

    async def _reset_deliveries(self, channel: Channel, notification_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        already_back = {NotificationMessage.from_json(body).notification_id for body in self._fake.sent}
        assert not already_back & set(notification_ids), "a delivery is reset before its message goes back"
        self._fake.calls.append(f"reset {len(notification_ids)}")
        self.reset.extend(notification_ids)
        return list(notification_ids)

    async def _gave_up_since(self, channel: Channel, since: datetime, *, exclude: set[uuid.UUID]) -> list[str]:
        return self._late


class TestRedrive:
    async def test_move_task_resets_every_delivery_first_then_moves_with_progress(self) -> None:
        messages = [notification() for _ in range(3)]
        sqs = FakeSqs([m.to_json() for m in messages], move_tasks=True)
        queues = Queues(sqs)
        progress: list[tuple[int, int | None]] = []
        result = await queues.redrive(Channel.SLACK, progress=lambda done, total: progress.append((done, total)))
        assert (result.method, result.moved, result.deliveries_reset, result.late) == ("move-task", 3, 3, [])
        assert set(queues.reset) == {m.notification_id for m in messages}
        assert sqs.calls.index("reset 3") < sqs.calls.index("visible 3") < sqs.calls.index("start")
        assert progress == [(1, 3), (3, 3)]
        assert sqs.dlq == {}

    async def test_move_task_reports_deliveries_that_gave_up_meanwhile(self) -> None:
        sqs = FakeSqs([notification().to_json()], move_tasks=True)
        result = await Queues(sqs, late=["late-one"]).redrive(Channel.SLACK)
        assert result.late == ["late-one"]

    async def test_without_move_tasks_it_copies_resetting_before_sending_and_deleting_after(self) -> None:
        messages = [notification() for _ in range(12)]
        sqs = FakeSqs([m.to_json() for m in messages] + ["not json"], move_tasks=False)
        result = await Queues(sqs).redrive(Channel.SLACK)
        assert (result.method, result.moved, result.deliveries_reset, result.left_unparseable, result.failed) == ("copy", 12, 12, 1, 0)
        assert sorted(sqs.sent) == sorted(m.to_json() for m in messages)
        assert sqs.dlq == {"m12": "not json"} and not sqs.hidden, "the unparseable message stays, visible"
        first_batch = sqs.calls[: sqs.calls.index("delete 10") + 1]
        assert first_batch == ["receive 10", "reset 10", "send 10", "delete 10"]

    async def test_move_task_asked_for_where_unsupported(self) -> None:
        with pytest.raises(FailedError, match="does not support StartMessageMoveTask"):
            await Queues(FakeSqs([], move_tasks=False)).redrive(Channel.SLACK, method="move-task")


class TestBulkLane:
    async def test_redrive_reads_the_bulk_dlq_and_sends_back_to_the_bulk_queue(self) -> None:
        class RecordingSqs(FakeSqs):
            def __init__(self, bodies: list[str]) -> None:
                super().__init__(bodies, move_tasks=False)
                self.urls: list[tuple[str, str]] = []

            async def receive_message(self, QueueUrl: str, **options: Any) -> dict[str, Any]:  # noqa: N803
                self.urls.append(("receive", QueueUrl))
                return await super().receive_message(QueueUrl, **options)

            async def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
                self.urls.append(("send", QueueUrl))
                return await super().send_message_batch(QueueUrl, Entries)

        messages = [notification() for _ in range(2)]
        sqs = RecordingSqs([m.to_json() for m in messages])
        result = await Queues(sqs).redrive(Channel.SLACK, lane=Lane.BULK)
        assert (result.method, result.moved, result.deliveries_reset) == ("copy", 2, 2)
        assert {url for kind, url in sqs.urls if kind == "receive"} == {"https://sqs/slack_bulk_notifications_dlq"}
        assert {url for kind, url in sqs.urls if kind == "send"} == {"https://sqs/slack_bulk_notifications"}
