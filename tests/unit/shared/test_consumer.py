"""The consumer runtime's decisions, against an in-memory queue, delivery table and provider.

The real SQS, Postgres and providers are exercised in tests/integration/shared/test_consumer.py; here
every branch of "what happens to this message" is checked quickly and exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog.testing
from prometheus_client import REGISTRY

from sender_sms.settings import SmsSenderSettings
from shared.consumer import Consumer, Slots
from shared.deliveries import Claim
from shared.failover import FailoverProvider, NamedProvider
from shared.messages import NotificationMessage, RecipientSnapshot
from shared.providers import PermanentSendError, Provider, SendResult, TransientSendError
from shared.sqs_queue import ReceivedMessage
from shared.statuses import DeliveryStatus
from shared.topology import Channel

ME = "replica-under-test"
_ids = itertools.count(1)


# ---------------------------------------------------------------- fakes


class FakeQueue:
    queue_name = "sms_notifications"

    def __init__(self) -> None:
        self.available: list[ReceivedMessage] = []
        self.receive_requests: list[int] = []
        self.visibility: list[tuple[str, int]] = []
        self.deleted: list[str] = []
        self.delete_batches: list[int] = []
        self.dead_lettered: list[tuple[str, str]] = []
        self.requeued: list[tuple[str, int]] = []
        self.fail_receives = 0
        # How long a ReceiveMessage that finds messages takes to answer.
        self.receive_latency = 0.0

    def add(self, body: str, *, receive_count: int = 1) -> ReceivedMessage:
        number = next(_ids)
        message = ReceivedMessage(
            message_id=f"m-{number}", receipt_handle=f"rh-{number}", body=body, receive_count=receive_count
        )
        self.available.append(message)
        return message

    async def receive(self, *, max_messages: int, wait_seconds: int, visibility_timeout: int) -> list[ReceivedMessage]:
        self.receive_requests.append(max_messages)
        if self.fail_receives:
            self.fail_receives -= 1
            raise ConnectionError("sqs unreachable")
        if not self.available:
            await asyncio.sleep(0.005)
            return []
        if self.receive_latency:
            await asyncio.sleep(self.receive_latency)
        taken, self.available = self.available[:max_messages], self.available[max_messages:]
        for message in taken:
            message.visible_until = time.monotonic() + visibility_timeout
        return taken

    async def change_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        self.visibility.append((message.message_id, seconds))

    async def change_visibility_batch(self, messages: list[ReceivedMessage], seconds: int) -> set[str]:
        self.visibility.extend((message.message_id, seconds) for message in messages)
        return set()

    async def delete_batch(self, messages: list[ReceivedMessage]) -> list[tuple[ReceivedMessage, str]]:
        self.delete_batches.append(len(messages))
        self.deleted.extend(message.message_id for message in messages)
        return []

    async def requeue(self, message: ReceivedMessage, *, delay_seconds: int) -> None:
        self.requeued.append((message.message_id, delay_seconds))

    async def send_to_dead_letter_queue(self, message: ReceivedMessage, *, reason: str) -> None:
        self.dead_lettered.append((message.message_id, reason))

    def visibility_of(self, message: ReceivedMessage) -> list[int]:
        return [seconds for message_id, seconds in self.visibility if message_id == message.message_id]


@dataclass
class Row:
    status: str = "pending"
    attempts: int = 0
    claimed_by: str | None = None
    claimed_until: float | None = None
    last_error: str | None = None
    provider_message_id: str | None = None
    provider: str | None = None


@dataclass
class FakeDeliveries:
    rows: dict[uuid.UUID, Row] = field(default_factory=dict)
    unavailable: bool = False
    fail_mark_sent: int = 0
    extended: list[list[uuid.UUID]] = field(default_factory=list)

    def _check(self) -> None:
        if self.unavailable:
            raise ConnectionRefusedError("database down")

    async def claim(self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, lease_seconds: float) -> Claim:
        self._check()
        row = self.rows.get(notification_id)
        if row is None:
            return Claim(claimed=False, status=None)
        now = time.monotonic()
        expired = row.claimed_until is None or row.claimed_until < now
        if row.status == "pending" or (row.status == "sending" and expired):
            row.status, row.attempts, row.claimed_by = "sending", row.attempts + 1, claimed_by
            row.claimed_until = now + lease_seconds
            return Claim(claimed=True, status=DeliveryStatus.SENDING, attempts=row.attempts, claimed_by=claimed_by)
        remaining = max((row.claimed_until or now) - now, 0.0)
        return Claim(False, DeliveryStatus(row.status), row.attempts, row.claimed_by, remaining)

    async def mark_sent(
        self, *, notification_id: uuid.UUID, channel: Channel, provider_message_id: str | None, provider: str | None = None
    ) -> None:
        self._check()
        if self.fail_mark_sent:
            self.fail_mark_sent -= 1
            raise ConnectionResetError("connection lost")
        row = self.rows[notification_id]
        row.status, row.provider_message_id, row.claimed_by, row.claimed_until = "sent", provider_message_id, None, None
        row.provider = provider

    async def mark_failed(
        self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, reason: str, provider: str | None = None
    ) -> bool:
        return self._settle(notification_id, claimed_by, "failed", reason, provider)

    async def release(
        self, *, notification_id: uuid.UUID, channel: Channel, claimed_by: str, reason: str, provider: str | None = None
    ) -> bool:
        return self._settle(notification_id, claimed_by, "pending", reason, provider)

    async def extend_claims(
        self, *, notification_ids: list[uuid.UUID], channel: Channel, claimed_by: str, lease_seconds: float
    ) -> int:
        self._check()
        self.extended.append(list(notification_ids))
        return len(notification_ids)

    def _settle(self, notification_id: uuid.UUID, claimed_by: str, status: str, reason: str, provider: str | None) -> bool:
        self._check()
        row = self.rows[notification_id]
        if row.status != "sending" or row.claimed_by != claimed_by:
            return False
        row.status, row.last_error, row.claimed_by, row.claimed_until = status, reason, None, None
        row.provider = provider or row.provider
        return True


class FakeProvider(Provider):
    channel = Channel.SMS

    def __init__(self, outcome: Callable[[NotificationMessage], Any] | None = None, *, delay: float = 0.0) -> None:
        self.outcome = outcome
        self.delay = delay
        self.calls: list[uuid.UUID] = []
        self.active = 0
        self.max_active = 0
        self.finished: list[uuid.UUID] = []
        # time.monotonic() at each call's start and end.
        self.started_at: list[float] = []
        self.finished_at: list[float] = []

    async def send(self, message: NotificationMessage) -> SendResult:
        self.calls.append(message.notification_id)
        self.started_at.append(time.monotonic())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.outcome is not None:
                result = self.outcome(message)
                if isinstance(result, BaseException):
                    raise result
            self.finished.append(message.notification_id)
            return SendResult(provider_message_id=f"sns-{message.notification_id}")
        finally:
            self.active -= 1
            self.finished_at.append(time.monotonic())


# ---------------------------------------------------------------- helpers


def settings(**overrides: Any) -> SmsSenderSettings:
    values: dict[str, Any] = {
        "concurrency": 4,
        "receive_wait_seconds": 0,
        "visibility_timeout_seconds": 30,
        "heartbeat_seconds": 5,
        "backoff_base_seconds": 2,
        "backoff_max_seconds": 60,
        "delete_flush_seconds": 0.01,
        "rate_limit_per_second": 1000,
        "rate_limit_burst": 1000,
        "send_timeout_seconds": 1,
        "shutdown_grace_seconds": 2,
    }
    values.update(overrides)
    return SmsSenderSettings(**values)


def notification(*, channels: tuple[Channel, ...] = (Channel.SMS,)) -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", phone_number="+14155552671"),
        message="Your code is 1234",
        channels=list(channels),
        client="billing",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


class Harness:
    def __init__(
        self, provider: FakeProvider | None = None, *, more_providers: tuple[FakeProvider, ...] = (), **setting_overrides: Any
    ) -> None:
        self.queue = FakeQueue()
        self.deliveries = FakeDeliveries()
        self.provider = provider or FakeProvider()
        self.settings = settings(**setting_overrides)
        # The first fake is "primary", the others "secondary", "third" ... in order.
        names = ("primary", "secondary", "third")
        self.failover = FailoverProvider(
            [NamedProvider(name, fake) for name, fake in zip(names, (self.provider, *more_providers), strict=False)],
            policy=self.settings.breaker_policy,
        )
        self.consumer = self.new_consumer()

    def new_consumer(self) -> Consumer:
        """A consumer on the same queue, table and providers (a consumer runs once)."""
        return Consumer(
            settings=self.settings,
            provider=self.failover,
            queue=self.queue,  # type: ignore[arg-type]
            deliveries=self.deliveries,  # type: ignore[arg-type]
            instance_id=ME,
        )

    def publish(self, *, row: Row | None = None, receive_count: int = 1, **kwargs: Any) -> tuple[NotificationMessage, ReceivedMessage]:
        message = notification(**kwargs)
        self.deliveries.rows[message.notification_id] = row or Row()
        return message, self.queue.add(message.to_json(), receive_count=receive_count)

    def row(self, message: NotificationMessage) -> Row:
        return self.deliveries.rows[message.notification_id]

    async def run_until(self, condition: Callable[[], bool], *, timeout: float = 5.0, stop_early: bool = False) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(self.consumer.run(stop))
        try:
            await wait_until(condition, timeout=timeout)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)


async def wait_until(condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MetricDelta:
    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels
        self.start = metric(name, **labels)

    @property
    def value(self) -> float:
        return metric(self.name, **self.labels) - self.start


# ---------------------------------------------------------------- tests


class TestSuccess:
    async def test_sent_recorded_and_deleted(self) -> None:
        harness = Harness()
        message, received = harness.publish()
        sent = MetricDelta("sender_messages_sent_total", channel="sms")
        received_count = MetricDelta("sender_messages_received_total", channel="sms")
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        row = harness.row(message)
        assert (row.status, row.attempts, row.provider_message_id) == ("sent", 1, f"sns-{message.notification_id}")
        assert harness.provider.calls == [message.notification_id]
        assert harness.queue.visibility == []
        assert sent.value == 1 and received_count.value == 1
        assert metric("sender_messages_in_flight", channel="sms") == 0

    async def test_the_sent_log_line_carries_the_provider_calls_duration(self) -> None:
        harness = Harness(FakeProvider(delay=0.05))
        message, received = harness.publish()
        with structlog.testing.capture_logs() as logs:
            await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        [sent] = [line for line in logs if line["event"] == "sent"]
        assert 0.05 <= sent["provider_call_seconds"] < 1.0
        assert sent["provider_message_id"] == f"sns-{message.notification_id}"

    async def test_sent_is_recorded_even_when_the_database_blips(self) -> None:
        harness = Harness()
        harness.deliveries.fail_mark_sent = 1
        message, received = harness.publish()
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        assert harness.row(message).status == "sent"
        assert harness.provider.calls == [message.notification_id]

    async def test_deletes_are_batched(self) -> None:
        harness = Harness(concurrency=32, delete_flush_seconds=0.2)
        received = [harness.publish()[1] for _ in range(25)]
        await harness.run_until(lambda: len(harness.queue.deleted) == 25)
        assert sorted(harness.queue.deleted) == sorted(m.message_id for m in received)
        assert max(harness.queue.delete_batches) == 10
        assert len(harness.queue.delete_batches) <= 5


class TestPermanentFailure:
    async def test_recorded_failed_with_reason_and_deleted_not_retried(self) -> None:
        provider = FakeProvider(lambda _m: PermanentSendError("InvalidParameter: bad number", code="invalid_parameter"))
        harness = Harness(provider)
        message, received = harness.publish()
        failed = MetricDelta("sender_messages_failed_total", channel="sms", reason="invalid_parameter")
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        row = harness.row(message)
        assert (row.status, row.last_error, row.attempts) == ("failed", "InvalidParameter: bad number", 1)
        assert harness.queue.visibility == [] and harness.queue.dead_lettered == []
        assert len(provider.calls) == 1
        assert failed.value == 1


class TestProviders:
    async def test_a_transient_failure_is_retried_on_the_next_provider_and_the_delivery_names_it(self) -> None:
        primary = FakeProvider(lambda _m: TransientSendError("HTTP 503", code="server_error"))
        secondary = FakeProvider()
        harness = Harness(primary, more_providers=(secondary,))
        message, received = harness.publish()
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        assert (harness.row(message).status, harness.row(message).provider) == ("pending", "primary")
        again = harness.queue.add(message.to_json(), receive_count=2)
        harness.consumer = harness.new_consumer()
        await harness.run_until(lambda: again.message_id in harness.queue.deleted)
        row = harness.row(message)
        assert (row.status, row.attempts, row.provider) == ("sent", 2, "secondary")
        assert (len(primary.calls), len(secondary.calls)) == (1, 1)

    async def test_every_breaker_open_pauses_receiving(self) -> None:
        provider = FakeProvider(lambda _m: TransientSendError("HTTP 503", code="server_error"))
        harness = Harness(provider, breaker_failure_threshold=1, breaker_cooldown_seconds=30)
        first, first_received = harness.publish()
        await harness.run_until(lambda: bool(harness.queue.visibility_of(first_received)))
        assert harness.failover.seconds_until_available() > 25

        second, second_received = harness.publish()
        harness.consumer = harness.new_consumer()
        receives = len(harness.queue.receive_requests)
        with pytest.raises(AssertionError):
            await harness.run_until(lambda: bool(harness.queue.visibility_of(second_received)), timeout=0.5)
        assert len(harness.queue.receive_requests) == receives, "receiving paused while every breaker is open"
        assert (harness.row(second).attempts, len(provider.calls)) == (0, 1)

    async def test_a_failure_on_the_last_receive_during_an_outage_is_requeued_not_given_up(self) -> None:
        provider = FakeProvider(lambda _m: TransientSendError("HTTP 503", code="server_error"))
        harness = Harness(provider, breaker_failure_threshold=1, breaker_cooldown_seconds=30)
        message, received = harness.publish(receive_count=5)
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        [(requeued_id, delay)] = harness.queue.requeued
        assert requeued_id == received.message_id and 30 < delay <= 60 + 31  # back-off (at most 60) + cool-down
        assert (harness.row(message).status, harness.row(message).attempts) == ("pending", 1)
        assert harness.queue.visibility_of(received) == [] and harness.queue.dead_lettered == []

    async def test_a_message_with_five_real_attempts_gives_up_even_during_an_outage(self) -> None:
        provider = FakeProvider(lambda _m: TransientSendError("HTTP 500", code="server_error"))
        harness = Harness(provider, breaker_failure_threshold=1, breaker_cooldown_seconds=30)
        message, received = harness.publish(receive_count=5, row=Row(attempts=4))
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        assert harness.queue.visibility_of(received) == [0] and harness.queue.requeued == []
        assert harness.row(message).status == "failed"

    async def test_while_probing_one_message_is_received_at_a_time(self) -> None:
        harness = Harness(FakeProvider(delay=0.3), breaker_cooldown_seconds=0.2, concurrency=8)
        harness.failover.breakers["primary"].trip()
        received = [harness.publish()[1] for _ in range(4)]
        await harness.run_until(lambda: all(r.message_id in harness.queue.deleted for r in received), timeout=10)
        # The probe alone (one message), then, closed again, the rest together.
        assert harness.queue.receive_requests[0] == 1
        assert max(harness.queue.receive_requests) > 1

    async def test_a_message_received_while_every_breaker_is_open_goes_back_unclaimed(self) -> None:
        harness = Harness(breaker_cooldown_seconds=30)
        harness.failover.breakers["primary"].trip()
        message, received = harness.publish()
        await harness.consumer._deliver(received, message)
        assert harness.queue.visibility_of(received) == [31]
        assert (harness.row(message).status, harness.row(message).attempts) == ("pending", 0)
        assert harness.provider.calls == []


class TestTransientFailure:
    async def test_released_to_pending_and_backed_off(self) -> None:
        provider = FakeProvider(lambda _m: TransientSendError("Throttling: slow down", code="throttling"))
        harness = Harness(provider, backoff_base_seconds=4)
        message, received = harness.publish(receive_count=2)
        retried = MetricDelta("sender_messages_retried_total", channel="sms")
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        row = harness.row(message)
        assert (row.status, row.last_error, row.attempts, row.claimed_by) == ("pending", "Throttling: slow down", 1, None)
        [delay] = harness.queue.visibility_of(received)
        assert 4 <= delay <= 8  # second receive: base * 2, half of it jittered
        assert harness.queue.deleted == []
        assert retried.value == 1

    async def test_retry_after_is_honoured(self) -> None:
        provider = FakeProvider(lambda _m: TransientSendError("rate limited", code="ratelimited", retry_after=7))
        harness = Harness(provider)
        _message, received = harness.publish()
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        assert harness.queue.visibility_of(received) == [7]

    async def test_last_receive_records_failed_and_leaves_it_to_the_redrive_policy(self) -> None:
        provider = FakeProvider(lambda _m: TransientSendError("HTTP 503", code="server_error"))
        harness = Harness(provider)
        message, received = harness.publish(receive_count=5, row=Row(attempts=4, last_error="HTTP 503"))
        exhausted = MetricDelta("sender_messages_failed_total", channel="sms", reason="retries_exhausted")
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        row = harness.row(message)
        assert (row.status, row.attempts) == ("failed", 5)
        assert row.last_error == "gave up after 5 attempts: HTTP 503"
        assert harness.queue.visibility_of(received) == [0], "visible at once: the next receive moves it to the DLQ"
        assert harness.queue.deleted == [] and harness.queue.dead_lettered == []
        assert exhausted.value == 1

    async def test_send_timeout_is_transient(self) -> None:
        harness = Harness(FakeProvider(delay=5), send_timeout_seconds=0.05)
        message, received = harness.publish()
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        row = harness.row(message)
        assert row.status == "pending"
        assert row.last_error == "no answer within 0.05 s"

    async def test_unexpected_provider_error_does_not_lose_the_message(self) -> None:
        harness = Harness(FakeProvider(lambda _m: KeyError("boom")))
        message, received = harness.publish()
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        assert harness.row(message).status == "pending"
        assert harness.row(message).last_error == "unexpected error: KeyError: 'boom'"
        assert harness.queue.deleted == []

    async def test_database_unavailable_leaves_the_message_unsent(self) -> None:
        harness = Harness()
        harness.deliveries.unavailable = True
        message, received = harness.publish()
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        assert harness.provider.calls == []
        [delay] = harness.queue.visibility_of(received)
        assert 1 <= delay <= 2
        assert harness.row(message).status == "pending" and harness.row(message).attempts == 0
        assert harness.queue.deleted == []

    async def test_receiving_pauses_while_the_database_is_down(self) -> None:
        harness = Harness(backoff_base_seconds=0.4, receivers=1)
        harness.deliveries.unavailable = True
        _message, first = harness.publish()
        stop = asyncio.Event()
        task = asyncio.create_task(harness.consumer.run(stop))
        await wait_until(lambda: bool(harness.queue.visibility_of(first)))
        receives = len(harness.queue.receive_requests)
        await asyncio.sleep(0.2)
        assert len(harness.queue.receive_requests) == receives, "paused"
        harness.deliveries.unavailable = False
        second_message, second = harness.publish()
        await wait_until(lambda: second.message_id in harness.queue.deleted, timeout=3)
        stop.set()
        await task
        assert harness.row(second_message).status == "sent"


class TestDuplicates:
    @pytest.mark.parametrize("status", ["sent", "failed"])
    async def test_settled_delivery_is_deleted_unsent(self, status: str) -> None:
        harness = Harness()
        message, received = harness.publish(row=Row(status=status, attempts=1))
        skipped = MetricDelta("sender_duplicates_skipped_total", channel="sms")
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        assert harness.provider.calls == []
        assert harness.row(message).attempts == 1
        assert skipped.value == 1

    async def test_live_claim_elsewhere_is_left_alone_until_it_ends(self) -> None:
        harness = Harness()
        row = Row(status="sending", attempts=1, claimed_by="other", claimed_until=time.monotonic() + 10)
        message, received = harness.publish(row=row)
        await harness.run_until(lambda: bool(harness.queue.visibility_of(received)))
        assert harness.provider.calls == []
        [delay] = harness.queue.visibility_of(received)
        assert delay in (10, 11)
        assert harness.row(message).claimed_by == "other"
        assert harness.queue.deleted == []

    async def test_expired_claim_of_a_dead_replica_is_taken_over(self) -> None:
        harness = Harness()
        row = Row(status="sending", attempts=1, claimed_by="dead", claimed_until=time.monotonic() - 1)
        message, received = harness.publish(row=row)
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        assert (harness.row(message).status, harness.row(message).attempts) == ("sent", 2)
        assert harness.provider.calls == [message.notification_id]


class TestUnprocessableMessages:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ("not json at all", "unparseable message: Invalid JSON"),
            ('{"notification_id": "x"}', "unparseable message: notification_id: Input should be a valid UUID"),
            ("{}", "unparseable message: notification_id: Field required"),
        ],
    )
    async def test_unparseable_goes_to_the_dlq_and_the_loop_goes_on(self, body: str, expected: str) -> None:
        harness = Harness()
        bad = harness.queue.add(body)
        good_message, good = harness.publish()
        unparseable = MetricDelta("sender_messages_failed_total", channel="sms", reason="unparseable")
        await harness.run_until(lambda: {bad.message_id, good.message_id} <= set(harness.queue.deleted))
        [(message_id, reason)] = harness.queue.dead_lettered
        assert message_id == bad.message_id
        assert reason.startswith(expected)
        assert harness.row(good_message).status == "sent"
        assert unparseable.value == 1

    async def test_message_for_another_channel_goes_to_the_dlq(self) -> None:
        harness = Harness()
        _message, received = harness.publish(channels=(Channel.EMAIL,))
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        assert harness.queue.dead_lettered == [(received.message_id, "message is addressed to ['email'], not sms")]
        assert harness.provider.calls == []

    async def test_message_without_delivery_row_goes_to_the_dlq(self) -> None:
        harness = Harness()
        message, received = harness.publish()
        del harness.deliveries.rows[message.notification_id]
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        assert harness.queue.dead_lettered == [(received.message_id, "no delivery record for this notification")]
        assert harness.provider.calls == []


class TestConcurrency:
    async def test_never_more_in_flight_than_slots_and_receives_only_free_slots(self) -> None:
        harness = Harness(FakeProvider(delay=0.05), concurrency=3, receivers=2, receive_ahead=0)
        for _ in range(12):
            harness.publish()
        await harness.run_until(lambda: len(harness.queue.deleted) == 12)
        assert harness.provider.max_active == 3
        assert max(harness.queue.receive_requests) <= 3

    async def test_receivers_default_to_one_per_ten_slots(self) -> None:
        assert settings(concurrency=32).receiver_count == 4
        assert settings(concurrency=10).receiver_count == 1
        assert settings(concurrency=32, receivers=2).receiver_count == 2

    async def test_receive_errors_are_survived(self) -> None:
        harness = Harness()
        harness.queue.fail_receives = 1
        _message, received = harness.publish()
        await harness.run_until(lambda: received.message_id in harness.queue.deleted, timeout=8)

    async def test_slots(self) -> None:
        slots = Slots(5)
        assert await slots.reserve(10) == 5
        waiter = asyncio.create_task(slots.reserve(10))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        slots.release(2)
        assert await waiter == 2
        assert slots.free == 0

    async def test_slots_wait_for_the_least_a_receiver_asks_for(self) -> None:
        slots = Slots(6)
        assert await slots.reserve(6) == 6
        waiter = asyncio.create_task(slots.reserve(10, least=3))
        slots.release(2)
        await asyncio.sleep(0.01)
        assert not waiter.done(), "two free places are fewer than the three asked for"
        slots.release(2)
        assert await waiter == 4


async def one_slot_behind_a_slow_receive(*, receive_ahead: int, messages: int) -> tuple[Harness, list[float]]:
    """One slot, a provider call of 50 ms, a ReceiveMessage of 150 ms: the harness, and the
    seconds the slot stood empty between one send's end and the next one's start."""
    harness = Harness(FakeProvider(delay=0.05), concurrency=1, receivers=1, receive_ahead=receive_ahead)
    harness.queue.receive_latency = 0.15
    for _ in range(messages):
        harness.publish()
    await harness.run_until(lambda: len(harness.queue.deleted) == messages)
    provider = harness.provider
    return harness, [start - end for end, start in zip(provider.finished_at, provider.started_at[1:])]


class TestReceiveAhead:
    async def test_a_freed_slot_starts_the_next_message_without_waiting_for_a_receive(self) -> None:
        harness, gaps = await one_slot_behind_a_slow_receive(receive_ahead=4, messages=5)
        assert harness.provider.max_active == 1, "the buffer adds no concurrency"
        assert max(gaps) < 0.05, gaps
        assert harness.queue.receive_requests[0] == 5, "the slot and the whole buffer asked for at once"

    async def test_without_a_buffer_a_freed_slot_waits_for_a_receive(self) -> None:
        harness, gaps = await one_slot_behind_a_slow_receive(receive_ahead=0, messages=3)
        assert min(gaps) >= 0.1, gaps
        assert set(harness.queue.receive_requests) == {1}

    async def test_receivers_wait_for_half_the_buffer_to_be_free(self) -> None:
        # Two slots and a buffer of 8: the first receive fills all 10 places; the next one asks
        # once 4 are free again (half the buffer), for those 4, not for each freed place alone.
        harness = Harness(FakeProvider(delay=0.02), concurrency=2, receivers=1, receive_ahead=8)
        for _ in range(30):
            harness.publish()
        await harness.run_until(lambda: len(harness.queue.deleted) == 30)
        requests = harness.queue.receive_requests
        assert requests[0] == 10
        assert min(requests[1:4]) >= 4, requests

    async def test_buffered_messages_are_counted_apart_from_the_busy_slots(self) -> None:
        harness = Harness(FakeProvider(delay=0.3), concurrency=1, receivers=1, receive_ahead=3)
        for _ in range(4):
            harness.publish()
        stop = asyncio.Event()
        task = asyncio.create_task(harness.consumer.run(stop))
        try:
            await wait_until(lambda: metric("sender_messages_received_ahead", channel="sms") == 3)
            assert metric("sender_messages_in_flight", channel="sms") == 1
            assert harness.consumer.in_flight == 4
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=10)
        assert metric("sender_messages_received_ahead", channel="sms") == 0
        assert metric("sender_messages_in_flight", channel="sms") == 0

    async def test_buffered_messages_are_kept_invisible_by_the_heartbeat(self) -> None:
        harness = Harness(
            FakeProvider(delay=2.5), concurrency=1, receive_ahead=1, visibility_timeout_seconds=2,
            heartbeat_seconds=0.2, send_timeout_seconds=5,
        )
        _first_message, first = harness.publish()
        _second_message, second = harness.publish()
        extended_before_its_send: list[int] = []

        def second_send_started() -> bool:
            if len(harness.provider.calls) < 2:
                return False
            extended_before_its_send.extend(harness.queue.visibility_of(second))
            return True

        await harness.run_until(second_send_started, timeout=8)
        assert extended_before_its_send and set(extended_before_its_send) == {2}, "extended while it waited for the slot"
        assert first.message_id in harness.queue.deleted

    async def test_buffered_messages_are_handed_back_at_shutdown(self) -> None:
        harness = Harness(FakeProvider(delay=0.3), concurrency=1, receivers=1, receive_ahead=3)
        first_message, first = harness.publish()
        buffered = [harness.publish()[1] for _ in range(3)]
        await harness.run_until(lambda: len(harness.provider.calls) == 1)
        assert harness.row(first_message).status == "sent"
        assert first.message_id in harness.queue.deleted
        for message in buffered:
            assert harness.queue.visibility_of(message) == [0]
        assert len(harness.provider.calls) == 1
        assert harness.consumer.in_flight == 0


class TestHeartbeat:
    async def test_extends_visibility_and_claims_of_long_sends(self) -> None:
        harness = Harness(FakeProvider(delay=2.2), visibility_timeout_seconds=2, heartbeat_seconds=0.2, send_timeout_seconds=5)
        message, received = harness.publish()
        await harness.run_until(lambda: received.message_id in harness.queue.deleted)
        extensions = harness.queue.visibility_of(received)
        assert extensions and set(extensions) == {2}
        assert [message.notification_id] in harness.deliveries.extended
        assert harness.row(message).status == "sent"

    async def test_does_not_override_a_settled_message(self) -> None:
        harness = Harness(visibility_timeout_seconds=2, heartbeat_seconds=1)
        received = harness.queue.add("{}")
        received.visible_until = time.monotonic()  # due
        received.settled = True
        harness.consumer._in_flight[received] = asyncio.create_task(asyncio.sleep(0))
        await harness.consumer.heartbeat()
        assert harness.queue.visibility == []


class TestShutdown:
    async def test_finishes_started_sends_and_hands_back_unstarted(self) -> None:
        # One token: the first message is sent (slowly), the others wait for their turn.
        harness = Harness(FakeProvider(delay=0.3), rate_limit_per_second=0.1, rate_limit_burst=1)
        first_message, first = harness.publish()
        waiting = [harness.publish()[1] for _ in range(2)]
        await harness.run_until(lambda: len(harness.provider.calls) == 1)
        assert harness.provider.finished == [first_message.notification_id], "the started send completed"
        assert harness.row(first_message).status == "sent"
        assert first.message_id in harness.queue.deleted, "deletes are flushed before run() returns"
        for message in waiting:
            assert harness.queue.visibility_of(message) == [0]
        assert len(harness.provider.calls) == 1
        assert harness.consumer.in_flight == 0

    async def test_gives_up_on_sends_after_the_grace_period(self) -> None:
        harness = Harness(FakeProvider(delay=30), shutdown_grace_seconds=0.2, send_timeout_seconds=60)
        message, received = harness.publish()
        started = time.monotonic()
        await harness.run_until(lambda: len(harness.provider.calls) == 1)
        assert time.monotonic() - started < 5
        assert harness.row(message).status == "sending", "the claim expires on its own"
        assert harness.queue.deleted == []
