"""A channel's SQS queue and dead-letter queue, as the consumer runtime uses them.

``SqsQueue`` wraps the handful of SQS calls a sender makes; ``DeleteBatcher`` collects the
deletes of finished messages into DeleteMessageBatch calls of up to ten.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.backoff import SQS_DELETE_RETRY
from shared.logging import get_logger

SQS_BATCH_SIZE = 10  # the most SQS accepts in one receive or batch call
# SQS allows 256 KiB per attribute value; keep the reason short enough to read in a console.
MAX_REASON_ATTRIBUTE_LENGTH = 1024
DEAD_LETTER_REASON_ATTRIBUTE = "sender_error"

log = get_logger(__name__)


@dataclass(eq=False)
class ReceivedMessage:
    """One received SQS message and what the consumer knows about it while it holds it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    attributes: dict[str, Any] = field(default_factory=dict)
    # When SQS first had it (epoch seconds; SentTimestamp), for handlers that retry for a while.
    sent_at: float = 0.0
    # time.monotonic() at which SQS makes it visible to other consumers again.
    visible_until: float = 0.0
    # Set once the runtime has committed to working on it (after its rate-limit turn); only
    # unstarted messages are handed back at shutdown.
    started: bool = False
    # The delivery this replica claimed for it, while it holds the claim (for the heartbeat).
    claimed_notification_id: Any = None
    # Set when its final SQS action (delete, new visibility) is under way: no more heartbeats.
    settled: bool = False

    @property
    def notification_id_attribute(self) -> str | None:
        value = self.attributes.get("notification_id", {})
        return value.get("StringValue") if isinstance(value, dict) else None


class SqsQueue:
    def __init__(self, sqs: Any, *, queue_name: str, dead_letter_queue_name: str) -> None:
        self._sqs = sqs
        self.queue_name = queue_name
        self.dead_letter_queue_name = dead_letter_queue_name
        self.queue_url: str | None = None
        self.dead_letter_queue_url: str | None = None

    async def resolve(self) -> None:
        """Look both queue URLs up; raises while the queues do not exist or SQS is unreachable."""
        self.queue_url = (await self._sqs.get_queue_url(QueueName=self.queue_name))["QueueUrl"]
        self.dead_letter_queue_url = (await self._sqs.get_queue_url(QueueName=self.dead_letter_queue_name))[
            "QueueUrl"
        ]

    async def check(self) -> None:
        """Readiness: the queue answers."""
        if self.queue_url is None:
            await self.resolve()
        await self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    async def receive(self, *, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[ReceivedMessage]:
        requested_at = time.monotonic()
        response = await self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
            MessageAttributeNames=["All"],
        )
        return [
            ReceivedMessage(
                message_id=raw["MessageId"],
                receipt_handle=raw["ReceiptHandle"],
                body=raw.get("Body", ""),
                receive_count=int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
                attributes=raw.get("MessageAttributes", {}),
                sent_at=int(raw.get("Attributes", {}).get("SentTimestamp", "0")) / 1000,
                # Counted from before the call: the visibility timeout started on SQS's side
                # somewhere during it, never before.
                visible_until=requested_at + visibility_timeout,
            )
            for raw in response.get("Messages", [])
        ]

    async def change_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        await self._sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=seconds
        )

    async def change_visibility_batch(self, messages: Sequence[ReceivedMessage], seconds: int) -> set[str]:
        """New visibility for many messages; returns the message ids SQS did not change."""
        failed: set[str] = set()
        for chunk in _chunks(messages, SQS_BATCH_SIZE):
            entries = [
                {"Id": str(index), "ReceiptHandle": message.receipt_handle, "VisibilityTimeout": seconds}
                for index, message in enumerate(chunk)
            ]
            response = await self._sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            failed.update(chunk[int(entry["Id"])].message_id for entry in response.get("Failed", []))
        return failed

    async def delete_batch(self, messages: Sequence[ReceivedMessage]) -> list[tuple[ReceivedMessage, str]]:
        """Delete up to ten messages; returns those SQS could not delete, with its reason."""
        entries = [{"Id": str(index), "ReceiptHandle": message.receipt_handle} for index, message in enumerate(messages)]
        response = await self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return [
            (messages[int(entry["Id"])], f"{entry.get('Code')}: {entry.get('Message', '')}")
            for entry in response.get("Failed", [])
        ]

    async def send_to_dead_letter_queue(self, message: ReceivedMessage, *, reason: str) -> None:
        """Put a copy in the DLQ, with the original attributes and why (``sender_error``)."""
        attributes = {
            name: {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
            for name, value in message.attributes.items()
            if name != DEAD_LETTER_REASON_ATTRIBUTE
        }
        attributes[DEAD_LETTER_REASON_ATTRIBUTE] = {
            "DataType": "String",
            "StringValue": reason[:MAX_REASON_ATTRIBUTE_LENGTH],
        }
        await self._sqs.send_message(
            QueueUrl=self.dead_letter_queue_url,
            MessageBody=message.body or "(empty)",
            MessageAttributes=attributes,
        )


class DeleteBatcher:
    """Collects deletes and sends them as DeleteMessageBatch calls: at once when ten are
    waiting, otherwise ``flush_seconds`` after the first one. A delete that fails is logged and
    left alone: the message comes back, and its delivery is already settled, so it is only
    deleted again (counted as a duplicate)."""

    def __init__(self, queue: SqsQueue, *, flush_seconds: float) -> None:
        self._queue = queue
        self._flush_seconds = flush_seconds
        self._pending: list[ReceivedMessage] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def delete(self, message: ReceivedMessage) -> None:
        self._pending.append(message)
        if len(self._pending) >= SQS_BATCH_SIZE:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._flush_seconds, self._start_flush)

    async def close(self) -> None:
        """Send everything still waiting and wait for every batch in progress."""
        while self._pending or self._flushes:
            self._start_flush()
            await asyncio.gather(*self._flushes, return_exceptions=True)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[:SQS_BATCH_SIZE], self._pending[SQS_BATCH_SIZE:]
            task = asyncio.create_task(self._send(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[ReceivedMessage]) -> None:
        for delay in (*SQS_DELETE_RETRY.delays(), None):
            try:
                failed = await self._queue.delete_batch(batch)
            except Exception as exc:  # noqa: BLE001 - logged; the messages come back and are skipped
                if delay is None:
                    log.warning("delete batch failed", error=f"{type(exc).__name__}: {exc}", messages=len(batch))
                    return
                await asyncio.sleep(delay)
                continue
            for message, reason in failed:
                log.warning("delete failed", sqs_message_id=message.message_id, error=reason)
            return


def _chunks(items: Sequence[ReceivedMessage] | Iterable[ReceivedMessage], size: int) -> list[list[ReceivedMessage]]:
    items = list(items)
    return [items[start : start + size] for start in range(0, len(items), size)]
