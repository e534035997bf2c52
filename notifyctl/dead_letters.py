"""The channels' dead-letter queues: what is there and why, replaying it, throwing it away.

Each channel has one per lane (``shared/topology.py``): ``<channel>_notifications_dlq`` for
one-offs (the default) and ``<channel>_bulk_notifications_dlq`` for batch items (``lane=bulk``);
a bulk dead letter is replayed to the bulk queue, the same way.

Replaying (``redrive``) is the delicate one. A dead letter's delivery row says ``failed`` ("gave
up after 5 attempts: ..."), and a ``failed`` delivery is final to the senders: a copy that
arrives later is deleted unsent (``shared/consumer.py``). So for every message it moves back,
``redrive`` first sets that delivery back to ``pending``, then puts the message on the source
queue, and only then deletes it from the DLQ:

- a crash between the steps leaves the message in the DLQ (run ``redrive`` again) or in both
  queues, and the delivery claims make the second copy a duplicate that is deleted unsent;
  nothing is lost and nothing is sent twice;
- messages the senders could not parse (a ``sender_error`` attribute, a body that is not a
  notification for this channel) would only come straight back: they stay in the DLQ.

Where the endpoint supports ``StartMessageMoveTask`` (AWS SQS), the move is SQS's own: the DLQ
is read once (messages stay hidden meanwhile) to reset the deliveries, made visible again, and
moved by one task whose progress is shown. A message that reaches the DLQ *during* that task
is moved without its delivery reset, and the sender then skips it; ``redrive`` reports such
deliveries (``late``) so they can be sent again. The copy path has no such window, and is what
runs on moto.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.config import Config
from pydantic import ValidationError

from notifyctl.errors import FailedError
from shared.channels import Channel, channel_spec
from shared.database import Database
from shared.logging import mask_personal_data
from shared.messages import NotificationMessage
from shared.queue_metrics import oldest_message_age_seconds, queue_counts
from shared.sqs_queue import DEAD_LETTER_REASON_ATTRIBUTE, SQS_BATCH_SIZE
from shared.topology import Lane, queues_for

GAVE_UP_PREFIX = "gave up after "

# A delivery that gave up after its last attempt ("gave up after 5 attempts: ...", written by
# shared/consumer.py), back to pending so that the senders send it again.
_RESET_GAVE_UP = """
    UPDATE deliveries
    SET status = 'pending', claimed_by = NULL, claimed_until = NULL, updated_at = now()
    WHERE channel = $1 AND notification_id = ANY($2::uuid[]) AND status = 'failed' AND starts_with(last_error, $3)
    RETURNING notification_id
"""
_DELIVERIES = """
    SELECT notification_id, status, attempts, last_error FROM deliveries
    WHERE channel = $1 AND notification_id = ANY($2::uuid[])
"""
_GAVE_UP_SINCE = """
    SELECT notification_id FROM deliveries
    WHERE channel = $1 AND status = 'failed' AND starts_with(last_error, $3) AND updated_at >= $2
"""
# Long enough that a message read during a redrive does not reappear before it is handled.
REDRIVE_VISIBILITY_SECONDS = 300
PEEK_VISIBILITY_SECONDS = 30
MOVE_TASK_POLL_SECONDS = 1.0
# Probing for StartMessageMoveTask must not sit in botocore's retries against an emulator that
# answers 500 for operations it does not know.
PROBE_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=10)

Progress = Callable[[int, int | None], None]  # (done, total or None when unknown)


@dataclass(frozen=True)
class ChannelStats:
    channel: str
    queue: str
    queue_depth: int
    queue_in_flight: int
    dead_letter_queue: str
    dead_letters: int
    dead_letters_in_flight: int
    oldest_dead_letter_age_seconds: float | None


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    sent_at: datetime | None
    receive_count: int
    notification_id: str | None
    recipient: str | None
    contact: str | None  # masked
    message: str | None
    client: str | None
    sender_error: str | None  # why a sender dead-lettered it itself (unparseable, wrong channel)
    delivery_status: str | None
    delivery_attempts: int | None
    last_error: str | None
    body: str | None = None  # the raw body, only when it is not a notification


@dataclass
class RedriveResult:
    channel: str
    method: str  # "move-task" or "copy"
    moved: int = 0
    deliveries_reset: int = 0
    left_unparseable: int = 0
    failed: int = 0
    late: list[str] = field(default_factory=list)  # deliveries that gave up during a move task


class DeadLetterQueues:
    def __init__(self, *, sqs: Any, database: Database, sqs_probe: Any | None = None) -> None:
        self._sqs = sqs
        self._probe = sqs_probe or sqs
        self._database = database

    # -- looking -------------------------------------------------------------------------

    async def stats(self, channels: Sequence[Channel] = tuple(Channel)) -> list[ChannelStats]:
        result = []
        for channel in channels:
            queues = channel_spec(channel)
            queue_url, dlq_url = await self._url(queues.queue), await self._url(queues.dead_letter_queue)
            waiting, in_flight = await queue_counts(self._sqs, queue_url)
            dead, dead_in_flight = await queue_counts(self._sqs, dlq_url)
            age = await oldest_message_age_seconds(self._sqs, dlq_url) if dead else None
            result.append(
                ChannelStats(
                    channel=channel.value,
                    queue=queues.queue,
                    queue_depth=waiting,
                    queue_in_flight=in_flight,
                    dead_letter_queue=queues.dead_letter_queue,
                    dead_letters=dead,
                    dead_letters_in_flight=dead_in_flight,
                    oldest_dead_letter_age_seconds=round(age, 1) if age is not None else None,
                )
            )
        return result

    async def peek(self, channel: Channel, limit: int, *, lane: Lane = Lane.STANDARD) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, decoded, with their delivery; none is consumed.

        Messages are read with a short visibility timeout (so that paging sees new ones) and
        made visible again at the end; if notifyctl dies meanwhile they reappear on their own.
        """
        dlq_url = await self._url(queues_for(channel, lane).dead_letter_queue)
        seen: dict[str, dict[str, Any]] = {}
        try:
            while len(seen) < limit:
                batch = await self._receive(dlq_url, min(SQS_BATCH_SIZE, limit - len(seen)), PEEK_VISIBILITY_SECONDS, wait=1)
                fresh = [m for m in batch if m["MessageId"] not in seen]
                if not fresh:
                    break
                seen.update((m["MessageId"], m) for m in fresh)
        finally:
            await self._make_visible(dlq_url, list(seen.values()))
        raw = list(seen.values())
        decoded = [_decode(m, channel) for m in raw]
        ids = [n.notification_id for n in decoded if n is not None]
        rows = await self._deliveries(channel, ids)
        return [_dead_letter(m, n, rows.get(str(n.notification_id)) if n else None, channel) for m, n in zip(raw, decoded, strict=True)]

    # -- replaying -----------------------------------------------------------------------

    async def redrive(
        self, channel: Channel, *, method: str = "auto", progress: Progress | None = None, lane: Lane = Lane.STANDARD
    ) -> RedriveResult:
        """Back to the lane's own queue (a bulk dead letter to ``<channel>_bulk_notifications``)."""
        queues = queues_for(channel, lane)
        queue_url, dlq_url = await self._url(queues.queue), await self._url(queues.dead_letter_queue)
        if method in ("auto", "move-task") and await self._move_tasks_supported(dlq_url):
            return await self._redrive_with_move_task(channel, queue_url, dlq_url, progress)
        if method == "move-task":
            raise FailedError("this SQS endpoint does not support StartMessageMoveTask; use --method copy")
        return await self._redrive_by_copying(channel, queue_url, dlq_url, progress)

    async def _redrive_by_copying(self, channel: Channel, queue_url: str, dlq_url: str, progress: Progress | None) -> RedriveResult:
        result = RedriveResult(channel=channel.value, method="copy")
        total = (await queue_counts(self._sqs, dlq_url))[0]
        left: dict[str, dict[str, Any]] = {}  # unparseable: hidden while we work, visible again at the end
        try:
            while True:
                batch = [m for m in await self._receive(dlq_url, SQS_BATCH_SIZE, REDRIVE_VISIBILITY_SECONDS, wait=1) if m["MessageId"] not in left]
                if not batch:
                    break
                movable = []
                for message in batch:
                    if _decode(message, channel) is None:
                        left[message["MessageId"]] = message
                        result.left_unparseable += 1
                    else:
                        movable.append(message)
                if movable:
                    ids = [_decode(m, channel).notification_id for m in movable]  # type: ignore[union-attr]
                    result.deliveries_reset += len(await self._reset_deliveries(channel, ids))
                    sent = await self._send(queue_url, movable)
                    unsent = [m for m in movable if m not in sent]
                    result.failed += len(unsent)
                    # Still dead letters: visible again at the end, for the next redrive.
                    left.update((m["MessageId"], m) for m in unsent)
                    await self._delete(dlq_url, sent)
                    result.moved += len(sent)
                if progress is not None:
                    done = result.moved + len(left)
                    progress(done, max(total, done))
        finally:
            await self._make_visible(dlq_url, list(left.values()))
        return result

    async def _redrive_with_move_task(self, channel: Channel, queue_url: str, dlq_url: str, progress: Progress | None) -> RedriveResult:
        result = RedriveResult(channel=channel.value, method="move-task")
        dlq_arn, queue_arn = await self._arn(dlq_url), await self._arn(queue_url)
        started = datetime.now(UTC)
        scanned: dict[str, dict[str, Any]] = {}
        try:
            while batch := [m for m in await self._receive(dlq_url, SQS_BATCH_SIZE, REDRIVE_VISIBILITY_SECONDS, wait=1) if m["MessageId"] not in scanned]:
                scanned.update((m["MessageId"], m) for m in batch)
            ids = [n.notification_id for n in (_decode(m, channel) for m in scanned.values()) if n is not None]
            reset = await self._reset_deliveries(channel, ids)
            result.deliveries_reset = len(reset)
        finally:
            await self._make_visible(dlq_url, list(scanned.values()))
        task = await self._sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn)
        while True:
            tasks = (await self._sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)).get("Results", [])
            current = next((t for t in tasks if t.get("TaskHandle") == task.get("TaskHandle")), tasks[0] if tasks else {})
            moved, to_move = int(current.get("ApproximateNumberOfMessagesMoved", 0)), current.get("ApproximateNumberOfMessagesToMove")
            if progress is not None:
                progress(moved, int(to_move) if to_move is not None else None)
            status = current.get("Status", "RUNNING")
            if status not in ("RUNNING", "CANCELLING"):
                break
            await asyncio.sleep(MOVE_TASK_POLL_SECONDS)
        result.moved = moved
        if status != "COMPLETED":
            raise FailedError(f"the message move task ended {status}: {current.get('FailureReason', 'no reason given')}")
        result.late = await self._gave_up_since(channel, started, exclude=set(reset))
        return result

    async def _move_tasks_supported(self, dlq_url: str) -> bool:
        try:
            await self._probe.list_message_move_tasks(SourceArn=await self._arn(dlq_url), MaxResults=1)
        except Exception:  # noqa: BLE001 - moto answers 500, others UnsupportedOperation: either way, copy
            return False
        return True

    # -- throwing away -------------------------------------------------------------------

    async def purge(self, channel: Channel, *, lane: Lane = Lane.STANDARD) -> int:
        """Delete every message of the channel's DLQ of ``lane``; returns how many there were (approximately)."""
        dlq_url = await self._url(queues_for(channel, lane).dead_letter_queue)
        waiting, in_flight = await queue_counts(self._sqs, dlq_url)
        try:
            await self._sqs.purge_queue(QueueUrl=dlq_url)
        except Exception as exc:
            if "PurgeQueueInProgress" in str(exc):
                raise FailedError("a purge of this queue is already in progress (SQS allows one a minute); try again shortly") from None
            raise
        return waiting + in_flight

    # -- SQS -----------------------------------------------------------------------------

    async def _url(self, name: str) -> str:
        return (await self._sqs.get_queue_url(QueueName=name))["QueueUrl"]

    async def _arn(self, url: str) -> str:
        return (await self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]

    async def _receive(self, url: str, count: int, visibility: int, *, wait: int) -> list[dict[str, Any]]:
        response = await self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=count,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=wait,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        )
        return response.get("Messages", [])

    async def _send(self, url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send copies to ``url``; returns the originals whose copy SQS accepted."""
        entries = [
            {"Id": str(index), "MessageBody": m["Body"], "MessageAttributes": _forwarded_attributes(m)}
            for index, m in enumerate(messages)
        ]
        response = await self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
        return [messages[int(entry["Id"])] for entry in response.get("Successful", [])]

    async def _delete(self, url: str, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        entries = [{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(messages)]
        response = await self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        if response.get("Failed"):
            # The copy is on the source queue already; this one stays a dead letter and a later
            # redrive's copy is a duplicate that the senders delete unsent.
            raise FailedError(f"could not delete {len(response['Failed'])} redriven message(s) from the DLQ; run redrive again")

    async def _make_visible(self, url: str, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_BATCH_SIZE):
            chunk = messages[start : start + SQS_BATCH_SIZE]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(chunk)]
            await self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)

    # -- Postgres ------------------------------------------------------------------------

    async def _reset_deliveries(self, channel: Channel, notification_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        """``failed`` ("gave up after ...") back to ``pending``, so the senders send them."""
        if not notification_ids:
            return []
        async with self._database.connection() as connection:
            return [row[0] for row in await connection.fetch(_RESET_GAVE_UP, channel.value, notification_ids, GAVE_UP_PREFIX)]

    async def _deliveries(self, channel: Channel, notification_ids: list[uuid.UUID]) -> dict[str, dict[str, Any]]:
        if not notification_ids:
            return {}
        async with self._database.connection() as connection:
            rows = await connection.fetch(_DELIVERIES, channel.value, notification_ids)
        return {str(row["notification_id"]): dict(row) for row in rows}

    async def _gave_up_since(self, channel: Channel, since: datetime, *, exclude: set[uuid.UUID]) -> list[str]:
        async with self._database.connection() as connection:
            found = [row[0] for row in await connection.fetch(_GAVE_UP_SINCE, channel.value, since, GAVE_UP_PREFIX)]
        return [str(notification_id) for notification_id in found if notification_id not in exclude]


def _decode(message: dict[str, Any], channel: Channel) -> NotificationMessage | None:
    """The notification a dead letter carries, or None when a sender could not use it."""
    try:
        notification = NotificationMessage.from_json(message.get("Body", ""))
    except ValidationError:
        return None
    return notification if channel in notification.channels else None


def _dead_letter(message: dict[str, Any], notification: NotificationMessage | None, row: dict[str, Any] | None, channel: Channel) -> DeadLetter:
    attributes = message.get("Attributes", {})
    sent = attributes.get("SentTimestamp")
    reason = message.get("MessageAttributes", {}).get(DEAD_LETTER_REASON_ATTRIBUTE, {}).get("StringValue")
    contact = None
    if notification is not None:
        contact = getattr(notification.recipient, channel_spec(channel).contact_field)
    return DeadLetter(
        message_id=message["MessageId"],
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        notification_id=str(notification.notification_id) if notification else None,
        recipient=notification.recipient.name if notification else None,
        contact=mask_personal_data(contact) if contact else None,
        message=notification.message if notification else None,
        client=notification.client if notification else None,
        sender_error=reason,
        delivery_status=row["status"] if row else None,
        delivery_attempts=row["attempts"] if row else None,
        last_error=row["last_error"] if row else None,
        body=None if notification else message.get("Body", "")[:1000],
    )


def _forwarded_attributes(message: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {key: value[key] for key in ("DataType", "StringValue", "BinaryValue") if key in value}
        for name, value in message.get("MessageAttributes", {}).items()
        if name != DEAD_LETTER_REASON_ATTRIBUTE
    }
