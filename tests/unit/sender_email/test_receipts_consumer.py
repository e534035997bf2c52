"""EmailReceiptConsumer on the consumer runtime, with a fake queue and receipt repository: what
becomes of each email_events message."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from tests.unit.shared.test_consumer import FakeQueue, MetricDelta, settings, wait_until

from sender_email.receipts_consumer import EmailReceiptConsumer
from shared.receipts import Receipt, ReceiptOutcome
from shared.sqs_queue import ReceivedMessage  # noqa: TC001 - in a Callable's annotation

MAIL = {"timestamp": "2017-08-05T00:40:02.012Z", "messageId": "ses-1", "destination": ["a@example.com"]}
DELIVERY = {"eventType": "Delivery", "mail": MAIL, "delivery": {"timestamp": "2017-08-05T00:40:03.012Z", "smtpResponse": "250 OK"}}


def envelope(event: dict) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "sns-1", "Message": json.dumps(event)})


class FakeReceipts:
    def __init__(self, outcome: ReceiptOutcome | Exception) -> None:
        self.outcome = outcome
        self.applied: list[Receipt] = []

    async def apply(self, receipt: Receipt) -> ReceiptOutcome:
        self.applied.append(receipt)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def consume(receipts: FakeReceipts, body: str, *, queued_seconds_ago: float, done: Callable[[FakeQueue, ReceivedMessage], bool]) -> FakeQueue:
    queue = FakeQueue()
    message = queue.add(body)
    message.sent_at = time.time() - queued_seconds_ago
    consumer = EmailReceiptConsumer(
        settings=settings(),
        queue=queue,  # type: ignore[arg-type]
        receipts=receipts,  # type: ignore[arg-type]
        instance_id="test",
        unknown_retry_seconds=300,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_until(lambda: done(queue, message))
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    return queue


class TestEmailReceiptConsumer:
    async def test_an_applied_receipt_is_deleted(self) -> None:
        receipts = FakeReceipts(ReceiptOutcome.APPLIED)
        queue = await consume(receipts, envelope(DELIVERY), queued_seconds_ago=1, done=lambda q, m: m.message_id in q.deleted)
        assert [r.provider_message_id for r in receipts.applied] == ["ses-1"]

    async def test_an_unknown_message_id_is_left_on_the_queue_with_backoff(self) -> None:
        retried = MetricDelta("sender_receipts_total", channel="email", outcome="unknown_retried")
        queue = await consume(
            FakeReceipts(ReceiptOutcome.UNKNOWN), envelope(DELIVERY), queued_seconds_ago=10, done=lambda q, m: bool(q.visibility_of(m))
        )
        assert not queue.deleted
        assert retried.value == 1
        assert all(1 <= seconds <= 60 for _, seconds in queue.visibility if seconds)

    async def test_an_unknown_message_id_past_the_window_is_counted_and_dropped(self) -> None:
        dropped = MetricDelta("sender_receipts_total", channel="email", outcome="unknown_dropped")
        queue = await consume(
            FakeReceipts(ReceiptOutcome.UNKNOWN), envelope(DELIVERY), queued_seconds_ago=301, done=lambda q, m: m.message_id in q.deleted
        )
        assert dropped.value == 1
        assert not queue.visibility

    async def test_an_event_that_is_not_a_receipt_is_deleted_unapplied(self) -> None:
        receipts = FakeReceipts(ReceiptOutcome.APPLIED)
        await consume(receipts, envelope({"eventType": "Open", "mail": MAIL}), queued_seconds_ago=1, done=lambda q, m: m.message_id in q.deleted)
        assert receipts.applied == []

    async def test_what_is_not_an_ses_event_goes_to_the_dead_letter_queue(self) -> None:
        queue = await consume(FakeReceipts(ReceiptOutcome.APPLIED), "not json", queued_seconds_ago=1, done=lambda q, m: bool(q.dead_lettered))
        [(_, reason)] = queue.dead_lettered
        assert reason.startswith("not an SES event in an SNS notification")

    async def test_a_database_error_leaves_it_on_the_queue(self) -> None:
        queue = await consume(
            FakeReceipts(ConnectionRefusedError("no postgres")), envelope(DELIVERY), queued_seconds_ago=1, done=lambda q, m: bool(q.visibility_of(m))
        )
        assert not queue.deleted and not queue.dead_lettered
