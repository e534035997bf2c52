"""SqsQueue's request shapes and the DeleteBatcher's batching."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.sqs_queue import DeleteBatcher, ReceivedMessage, SqsQueue


class FakeSqs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_delete_ids: set[str] = set()

    async def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("receive_message", kwargs))
        return {
            "Messages": [
                {
                    "MessageId": "m-1",
                    "ReceiptHandle": "rh-1",
                    "Body": "{}",
                    "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1764633600123"},
                    "MessageAttributes": {"notification_id": {"DataType": "String", "StringValue": "n-1"}},
                }
            ]
        }

    async def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("delete_message_batch", kwargs))
        failed = [
            {"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid", "Message": "gone", "SenderFault": True}
            for entry in kwargs["Entries"]
            if entry["ReceiptHandle"] in self.fail_delete_ids
        ]
        return {"Successful": [], "Failed": failed}

    async def change_message_visibility_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("change_message_visibility_batch", kwargs))
        return {"Successful": [], "Failed": []}

    async def send_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("send_message", kwargs))
        return {"MessageId": "dlq-1"}


def queue(sqs: FakeSqs) -> SqsQueue:
    result = SqsQueue(sqs, queue_name="sms_notifications", dead_letter_queue_name="sms_notifications_dlq")
    result.queue_url, result.dead_letter_queue_url = "http://sqs/q", "http://sqs/dlq"
    return result


def message(number: int) -> ReceivedMessage:
    return ReceivedMessage(message_id=f"m-{number}", receipt_handle=f"rh-{number}", body="{}", receive_count=1)


class TestSqsQueue:
    async def test_receive_asks_for_the_receive_count_and_parses_it(self) -> None:
        sqs = FakeSqs()
        [received] = await queue(sqs).receive(max_messages=4, wait_seconds=20, visibility_timeout=60)
        assert sqs.calls[0][1] == {
            "QueueUrl": "http://sqs/q",
            "MaxNumberOfMessages": 4,
            "WaitTimeSeconds": 20,
            "VisibilityTimeout": 60,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
            "MessageAttributeNames": ["All"],
        }
        assert (received.message_id, received.receipt_handle, received.receive_count) == ("m-1", "rh-1", 3)
        assert received.sent_at == 1764633600.123
        assert received.notification_id_attribute == "n-1"

    async def test_dead_letter_copy_keeps_attributes_and_says_why(self) -> None:
        sqs = FakeSqs()
        received = message(1)
        received.body = "garbage"
        received.attributes = {
            "channels": {"DataType": "String.Array", "StringValue": '["sms"]', "StringListValues": []}
        }
        await queue(sqs).send_to_dead_letter_queue(received, reason="unparseable message: Invalid JSON")
        assert sqs.calls == [
            (
                "send_message",
                {
                    "QueueUrl": "http://sqs/dlq",
                    "MessageBody": "garbage",
                    "MessageAttributes": {
                        "channels": {"DataType": "String.Array", "StringValue": '["sms"]'},
                        "sender_error": {"DataType": "String", "StringValue": "unparseable message: Invalid JSON"},
                    },
                },
            )
        ]

    async def test_visibility_batches_of_ten(self) -> None:
        sqs = FakeSqs()
        await queue(sqs).change_visibility_batch([message(n) for n in range(23)], 0)
        sizes = [len(kwargs["Entries"]) for _name, kwargs in sqs.calls]
        assert sizes == [10, 10, 3]
        assert all(entry["VisibilityTimeout"] == 0 for _name, kwargs in sqs.calls for entry in kwargs["Entries"])


class TestDeleteBatcher:
    async def test_ten_deletes_go_at_once(self) -> None:
        sqs = FakeSqs()
        batcher = DeleteBatcher(queue(sqs), flush_seconds=60)
        for number in range(10):
            batcher.delete(message(number))
        await asyncio.sleep(0.01)
        assert [len(kwargs["Entries"]) for _name, kwargs in sqs.calls] == [10]

    async def test_fewer_go_after_the_flush_delay(self) -> None:
        sqs = FakeSqs()
        batcher = DeleteBatcher(queue(sqs), flush_seconds=0.05)
        batcher.delete(message(1))
        batcher.delete(message(2))
        await asyncio.sleep(0.01)
        assert sqs.calls == []
        await asyncio.sleep(0.1)
        assert [len(kwargs["Entries"]) for _name, kwargs in sqs.calls] == [2]

    async def test_close_sends_what_is_left(self) -> None:
        sqs = FakeSqs()
        batcher = DeleteBatcher(queue(sqs), flush_seconds=60)
        for number in range(13):
            batcher.delete(message(number))
        await batcher.close()
        assert sorted(len(kwargs["Entries"]) for _name, kwargs in sqs.calls) == [3, 10]

    async def test_failed_entries_are_logged_not_raised(self) -> None:
        sqs = FakeSqs()
        sqs.fail_delete_ids = {"rh-1"}
        batcher = DeleteBatcher(queue(sqs), flush_seconds=60)
        batcher.delete(message(1))
        await batcher.close()
        assert len(sqs.calls) == 1
