"""The consumer runtime every sender runs: SQS in, provider call, status in Postgres.

What happens to a message
-------------------------
1. **Receive.** Long polling (``WaitTimeSeconds`` 20), never more messages than there are free
   slots (``concurrency``, default 32) plus free places in the receive-ahead buffer
   (``receive_ahead``, default 20). ``ceil(concurrency / 10)`` receivers poll at once, because
   one ReceiveMessage returns at most ten. A message received while every slot is busy waits in
   the buffer (*unstarted*; the heartbeat keeps it invisible) and starts the moment a slot
   frees, instead of that slot waiting for a ReceiveMessage of its own. A receiver asks once
   half the buffer (at most ten places) is free, so the other half covers the wait for the
   answer and a call brings up to ten messages, not one.
2. **Parse.** A body that is not a valid ``NotificationMessage`` (or is addressed to other
   channels, or has no ``deliveries`` row) can never succeed: it is copied to the channel's
   dead-letter queue with a ``sender_error`` attribute saying why, the original is deleted and
   an error is logged. The loop goes on.
3. **Rate limit.** The message waits for its turn in the provider's token bucket (for Slack one
   bucket per Slack channel): the process's own, or with ``RATE_LIMIT_SHARED`` (SMS and email by
   default) one every replica shares in Postgres (``shared/provider_rate_limit.py``). Until then
   it is *unstarted*.
4. **Claim.** One conditional UPDATE turns the delivery ``sending`` for this replica (see
   ``shared/deliveries.py``; the claims of messages received together go as one statement).
   If the delivery is already final (``sent``, ``failed``, ``skipped``) the message is a
   duplicate and is deleted unsent. If another replica holds a live claim, the message's
   visibility is pushed past that claim and it is left alone.
5. **Send**, bounded by ``send_timeout_seconds``. While the message is held, a heartbeat
   extends its visibility and its claim, so no second copy starts meanwhile.
6. **Settle.**

   - *Success*: ``sent`` with the provider's message id (group-committed with other sends that
     finished meanwhile; the message waits for its own commit, retried for about a minute
     while the database is unreachable); then the message is deleted (batched).
   - *Transient failure* (throttling, 5xx, timeouts, connection errors, database down): the
     delivery goes back to ``pending`` with ``last_error`` and the message stays on the queue,
     invisible for ``compute_backoff(receive count)`` seconds (exponential with jitter, or the
     provider's ``Retry-After``). When the database is down, receiving also pauses (doubling
     from ``backoff_base_seconds`` up to ``backoff_max_seconds``), so an outage does not use up
     the messages' receives.
   - *Transient failure on the last receive* (``ApproximateReceiveCount`` reached
     ``max_receive_count`` = the redrive policy's 5): the delivery is written ``failed`` with
     ``"gave up after 5 attempts: <reason>"`` right then (``attempts`` counts the claims, so 5
     when every receive got as far as the provider), and the message is made visible at once:
     SQS's redrive policy moves it to the DLQ on the next receive. The sender does not move it
     itself, so the DLQ still gets it when a sender dies on that last attempt; and the row does
     not wait for a DLQ consumer to be written. Replaying such a message from the DLQ needs its
     delivery set back to ``pending`` first (a ``failed`` delivery is final to the senders).
   - *Every provider unavailable* (all circuit breakers of the channel open, see
     ``shared/failover.py``): receiving pauses until the first breaker may take a probe, and a
     message already received is made invisible until then, unclaimed: as while the database
     is down, an outage does not use up the messages' receives. While no breaker is closed
     (open or probing), receives take one message at a time, and a message whose failure left
     every provider open waits, on top of its back-off, until each provider's next probe. A
     message on its last receive that has not had five real attempts (claims) is then put back
     as a fresh copy rather than left to the redrive policy: its receives went to the outage.
     One that has had them gives up as above (a message that fails everywhere by itself must
     not keep the breakers open for ever).
   - *Permanent failure* (invalid number, rejected address, Slack ``channel_not_found`` ...):
     the delivery is written ``failed`` with the provider's reason and the message is
     **deleted, not moved to the DLQ**. Replaying it could only fail the same way (the message
     carries the recipient snapshot it failed with), the ``deliveries`` row already holds the
     record and the reason, and keeping the DLQ for what an operator must act on (outages
     that outlasted five attempts, malformed messages) keeps its depth alarm meaningful.

Other handlers
--------------
The runtime (``QueueConsumer``: receiving, slots, the heartbeat, the database pause, deleting,
dead-lettering, shutdown) runs other handlers than the send (``Consumer``) the same way: a
subclass's ``_process`` decides each message's fate. The email sender's process runs two, on its
notification queue and on ``email_events`` (``sender_email/receipts_consumer.py``, whose docstring
is the life of an SES event); ``shared/sender_service.py`` starts them.

Shutdown (SIGTERM/SIGINT): receiving stops, unstarted messages (the buffer's among them) are
made visible again at once (ChangeMessageVisibility 0), started sends may finish within
``shutdown_grace_seconds``, pending deletes are flushed. A send still running after the grace
period is abandoned: its claim expires after the lease and the message reappears after its
visibility timeout.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid

import structlog
from pydantic import ValidationError

from shared.backoff import RECEIVE_ERRORS, RECORD_SENT, compute_backoff, database_pause
from shared.database import is_database_unavailable
from shared.deliveries import Claim, DeliveryRepository
from shared.failover import FailoverProvider
from shared.logging import get_logger
from shared.messages import NotificationMessage
from shared.providers import PermanentSendError, SendError, SendResult, TransientSendError
from shared.token_bucket import KeyedRateLimiter, RateLimiter
from shared.sender_metrics import (
    DUPLICATES_SKIPPED,
    MESSAGES_FAILED,
    MESSAGES_IN_FLIGHT,
    MESSAGES_RECEIVED,
    MESSAGES_RECEIVED_AHEAD,
    MESSAGES_RETRIED,
    MESSAGES_SENT,
    SEND_DURATION,
)
from shared.sender_settings import SenderSettings
from shared.sqs_queue import SQS_BATCH_SIZE, DeleteBatcher, ReceivedMessage, SqsQueue
from shared.statuses import FINAL_STATUSES, DeliveryStatus

log = get_logger(__name__)

# How long receivers get, at shutdown, to return from a ReceiveMessage already under way (its
# messages are then handed back at once). Long polls still waiting on an empty queue after
# that are cancelled.
RECEIVE_DRAIN_SECONDS = 1.0


class Slots:
    """How many more messages this process may hold (slots and receive-ahead buffer together);
    receivers reserve before receiving."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self._changed = asyncio.Event()

    async def reserve(self, most: int, *, least: int = 1) -> int:
        """Wait until at least ``least`` are free, then take up to ``most``."""
        while self.free < least:
            self._changed.clear()
            await self._changed.wait()
        taken = min(most, self.free)
        self.free -= taken
        return taken

    def release(self, count: int = 1) -> None:
        if count:
            self.free += count
            self._changed.set()


class QueueConsumer:
    """The runtime around a handler: receiving within ``concurrency`` slots, the heartbeat that
    keeps held messages invisible, the pause while the database is down, deletes, dead-lettering
    and shutdown (see the module docstring). A subclass is the handler: ``_process`` decides what
    becomes of each message. ``Consumer`` sends notifications; ``sender_email/receipts_consumer.py``
    applies SES events."""

    def __init__(self, *, settings: SenderSettings, queue: SqsQueue, instance_id: str, label: str) -> None:
        self._settings = settings
        self._queue = queue
        self.instance_id = instance_id
        # The ``channel`` label of the runtime's metrics and log lines: the channel a sender
        # sends on, or the queue a receipt consumer reads.
        self.label = label
        # The per-message series, looked up once (labels() costs a locked dict lookup each time).
        self._received = MESSAGES_RECEIVED.labels(label)
        self._in_flight_gauge = MESSAGES_IN_FLIGHT.labels(label)
        self._received_ahead_gauge = MESSAGES_RECEIVED_AHEAD.labels(label)
        # Held messages (reserved before each receive) and, within them, those being worked on.
        self._slots = Slots(settings.concurrency + settings.receive_ahead)
        self._working = asyncio.Semaphore(settings.concurrency)
        self._receive_at_least = max(1, min(SQS_BATCH_SIZE, settings.receive_ahead // 2))
        self._deleter = DeleteBatcher(queue, flush_seconds=settings.delete_flush_seconds)
        self._in_flight: dict[ReceivedMessage, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        # Held by the heartbeat while it extends visibilities; settling a message waits for it,
        # so an extension never lands after (and overrides) a message's back-off visibility.
        self._heartbeat_lock = asyncio.Lock()
        # While the database is down nothing can be done: receiving pauses (doubling up to
        # backoff_max_seconds), so an outage does not use up every message's five receives.
        self._database_pause = database_pause(base_seconds=settings.backoff_base_seconds, max_seconds=settings.backoff_max_seconds)
        self._database_failures = 0
        self._receiving_resumes_at = 0.0
        self._probing = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then shut down gracefully (see the module docstring)."""
        # On every line of this consumer's: its receivers and messages run in copies of this context.
        structlog.contextvars.bind_contextvars(channel=self.label)
        receivers = [
            asyncio.create_task(self._receive_loop(), name=f"receiver-{index}")
            for index in range(self._settings.receiver_count)
        ]
        heartbeat = asyncio.create_task(self._heartbeat_loop(), name="heartbeat")
        log.info(
            "consuming",
            queue=self._queue.queue_name,
            concurrency=self._settings.concurrency,
            receivers=len(receivers),
            instance_id=self.instance_id,
        )
        await stop.wait()
        await self._shutdown(receivers, heartbeat)

    # -- receiving -----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        errors = 0
        while not self._stopping.is_set():
            paused = max(self._receiving_resumes_at - time.monotonic(), self._paused_for_seconds())
            if paused > 0:
                await asyncio.sleep(min(paused, 1.0))  # a second at most: shutdown and probes are not kept waiting
                continue
            if self._one_at_a_time():
                # Every provider open or on probation: one message at a time across receivers,
                # each finished before the next is received, so the others keep their receives.
                async with self._probing:
                    if not self._one_at_a_time():
                        continue
                    outcome = await self._receive_batch(1, errors)
                    if outcome is not None:
                        if outcome[1]:
                            await asyncio.wait(outcome[1])
            else:
                outcome = await self._receive_batch(SQS_BATCH_SIZE, errors)
            if outcome is None:
                return
            errors = outcome[0]

    async def _receive_batch(self, most: int, errors: int) -> tuple[int, list[asyncio.Task[None]]] | None:
        """Receive up to ``most`` messages and start them; the receive errors in a row and the
        tasks started, or None when the consumer is stopping."""
        reserved = await self._slots.reserve(most, least=min(most, self._receive_at_least))
        if self._stopping.is_set():
            # Slots freed by shutdown itself (handed-back messages) are not for new work.
            self._slots.release(reserved)
            return None
        try:
            messages = await self._queue.receive(
                max_messages=reserved,
                wait_seconds=self._settings.receive_wait_seconds,
                visibility_timeout=self._settings.visibility_timeout_seconds,
            )
        except asyncio.CancelledError:
            self._slots.release(reserved)
            raise
        except Exception as exc:  # noqa: BLE001 - SQS trouble: log, back off, try again
            self._slots.release(reserved)
            delay = RECEIVE_ERRORS.delay(errors + 1)
            log.warning("receive failed", error=f"{type(exc).__name__}: {exc}", retry_in_seconds=delay)
            await asyncio.sleep(delay)
            return errors + 1, []
        self._slots.release(reserved - len(messages))
        self._received.inc(len(messages))
        if self._stopping.is_set():
            await self._hand_back(messages)
            self._slots.release(len(messages))
            return None
        tasks = []
        for message in messages:
            tasks.append(task := asyncio.create_task(self._handle(message)))
            self._in_flight[message] = task
        return 0, tasks

    def _paused_for_seconds(self) -> float:
        """How long receiving pauses for the handler's own reason (a sender: every provider open)."""
        return 0.0

    def _one_at_a_time(self) -> bool:
        """Whether to receive one message at a time, each finished first (a sender: probing)."""
        return False

    async def _hand_back(self, messages: list[ReceivedMessage]) -> None:
        """Make messages visible again at once (shutdown), for another replica or our successor."""
        if not messages:
            return
        for message in messages:
            message.settled = True
        try:
            failed = await self._queue.change_visibility_batch(messages, 0)
        except Exception as exc:  # noqa: BLE001 - they reappear after their visibility timeout instead
            log.warning("could not hand messages back", error=f"{type(exc).__name__}: {exc}", messages=len(messages))
            return
        log.info("handed unstarted messages back to the queue", messages=len(messages) - len(failed))

    # -- one message ---------------------------------------------------------------------

    async def _handle(self, message: ReceivedMessage) -> None:
        try:
            # Bound in this message's own task (create_task gave it a copy of the receiver's
            # context): they stay for the rest of the task and need no restoring, which saves
            # bound_contextvars' copy of the whole context per binding.
            structlog.contextvars.bind_contextvars(sqs_message_id=message.message_id, receive_count=message.receive_count)
            if self._working.locked():
                await self._wait_for_a_slot()
            else:
                await self._working.acquire()
            self._in_flight_gauge.inc()
            try:
                await self._process(message)
            finally:
                self._in_flight_gauge.dec()
                self._working.release()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never let one message take the loop down
            log.exception("unexpected error while handling a message; it will be redelivered")
        finally:
            self._in_flight.pop(message, None)
            self._slots.release()

    async def _wait_for_a_slot(self) -> None:
        """Every slot is busy: wait in the receive-ahead buffer (cancelled there at shutdown)."""
        self._received_ahead_gauge.inc()
        try:
            await self._working.acquire()
        finally:
            self._received_ahead_gauge.dec()

    async def _process(self, message: ReceivedMessage) -> None:
        """The handler: settle ``message`` (``_delete``, ``_set_visibility``, ``_dead_letter``);
        one that is left unsettled reappears after its visibility timeout."""
        raise NotImplementedError

    # -- settling ------------------------------------------------------------------------

    def _pause_receiving(self) -> None:
        self._database_failures += 1
        pause = self._database_pause.delay(self._database_failures)
        resumes_at = time.monotonic() + pause
        if resumes_at > self._receiving_resumes_at:
            self._receiving_resumes_at = resumes_at
            log.warning("database unavailable; pausing receiving", pause_seconds=pause)

    async def _dead_letter(self, message: ReceivedMessage, *, reason: str, code: str) -> None:
        log.error(
            "moving message to the dead-letter queue",
            reason=reason,
            notification_id_attribute=message.notification_id_attribute,
        )
        try:
            await self._queue.send_to_dead_letter_queue(message, reason=reason)
        except Exception as exc:  # noqa: BLE001 - it comes back; the redrive policy is the backstop
            log.warning("could not copy the message to the dead-letter queue", error=_short(exc))
            return
        MESSAGES_FAILED.labels(self.label, code).inc()
        await self._delete(message)

    async def _delete(self, message: ReceivedMessage) -> None:
        message.settled = True
        self._deleter.delete(message)

    async def _set_visibility(self, message: ReceivedMessage, seconds: int) -> None:
        message.settled = True
        async with self._heartbeat_lock:
            pass  # a heartbeat batch under way (which may include this message) finishes first
        try:
            await self._queue.change_visibility(message, seconds)
        except Exception as exc:  # noqa: BLE001 - it reappears when its current visibility ends
            log.warning("could not change the message's visibility", error=_short(exc), seconds=seconds)

    # -- heartbeat -----------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            try:
                await self.heartbeat()
            except Exception as exc:  # noqa: BLE001 - try again next beat
                log.warning("heartbeat failed", error=_short(exc))

    async def heartbeat(self) -> None:
        """Extend the visibility of held messages that would reappear before the next beat,
        and whatever else the handler holds for them (``_extend_leases``)."""
        interval = self._settings.heartbeat_seconds
        extension = self._settings.visibility_timeout_seconds
        async with self._heartbeat_lock:
            now = time.monotonic()
            due = [m for m in self._in_flight if not m.settled and m.visible_until - now < 2 * interval]
            if due:
                failed = await self._queue.change_visibility_batch(due, extension)
                for message in due:
                    if message.message_id not in failed:
                        message.visible_until = now + extension
                if failed:
                    log.warning("could not extend the visibility of some messages", messages=len(failed))
        await self._extend_leases()

    async def _extend_leases(self) -> None:
        """Called by every heartbeat: a handler holding leases of its own extends them here."""

    # -- shutdown ------------------------------------------------------------------------

    async def _shutdown(self, receivers: list[asyncio.Task[None]], heartbeat: asyncio.Task[None]) -> None:
        self._stopping.set()
        # No await between setting the flag and cancelling: a message that is still waiting for
        # its turn now stays unstarted (and one that wakes up later sees the flag).
        unstarted = [message for message in self._in_flight if not message.started]
        for message in unstarted:
            self._in_flight[message].cancel()
        log.info("shutting down", in_flight=len(self._in_flight), unstarted=len(unstarted))
        await self._hand_back(unstarted)

        _done, still_receiving = await asyncio.wait(receivers, timeout=RECEIVE_DRAIN_SECONDS)
        for task in still_receiving:
            task.cancel()
        await asyncio.gather(*receivers, return_exceptions=True)

        started = list(self._in_flight.values())
        if started:
            log.info("waiting for sends in progress", sends=len(started), grace_seconds=self._settings.shutdown_grace_seconds)
            _done, abandoned = await asyncio.wait(started, timeout=self._settings.shutdown_grace_seconds)
            if abandoned:
                log.warning("grace period over; abandoning sends still running", sends=len(abandoned))
                for task in abandoned:
                    task.cancel()
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        await self._deleter.close()
        log.info("consumer stopped")


class Consumer(QueueConsumer):
    """The send handler: a notification message in, the provider called, the delivery settled."""

    def __init__(
        self,
        *,
        settings: SenderSettings,
        provider: FailoverProvider,
        queue: SqsQueue,
        deliveries: DeliveryRepository,
        instance_id: str,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(settings=settings, queue=queue, instance_id=instance_id, label=settings.channel.value)
        self._provider = provider
        self._deliveries = deliveries
        self.channel = settings.channel
        self._send_duration = SEND_DURATION.labels(self.channel.value)
        self._sent = MESSAGES_SENT.labels(self.channel.value)
        self._rate_limiter = rate_limiter or KeyedRateLimiter(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst)
        self._providers_paused = False

    async def _process(self, message: ReceivedMessage) -> None:
        try:
            notification = NotificationMessage.from_json(message.body)
        except ValidationError as exc:
            message.started = True
            await self._dead_letter(message, reason=f"unparseable message: {_describe(exc)}", code="unparseable")
            return
        if self.channel not in notification.channels:
            message.started = True
            await self._dead_letter(
                message,
                reason=f"message is addressed to {[c.value for c in notification.channels]}, not {self.channel.value}",
                code="wrong_channel",
            )
            return
        structlog.contextvars.bind_contextvars(notification_id=str(notification.notification_id))
        await self._rate_limiter.acquire(self._provider.rate_limit_key(notification))
        if self._stopping.is_set():
            await self._hand_back([message])
            return
        message.started = True
        await self._deliver(message, notification)

    async def _deliver(self, message: ReceivedMessage, notification: NotificationMessage) -> None:
        unavailable = self._paused_for_seconds()
        if unavailable > 0:
            # Unclaimed, so no attempt is counted; it comes back when a probe may go out.
            await self._outlast_outage(message, math.ceil(unavailable) + 1)
            return
        try:
            claim = await self._deliveries.claim(
                notification_id=notification.notification_id,
                channel=self.channel,
                claimed_by=self.instance_id,
                lease_seconds=self._settings.claim_lease_seconds,
            )
        except Exception as exc:  # noqa: BLE001 - whatever broke, the message must survive it
            if is_database_unavailable(exc):
                self._pause_receiving()
            else:
                log.exception("claiming the delivery failed")
            await self._retry(
                message, TransientSendError(f"database unavailable: {_short(exc)}", code="database_unavailable")
            )
            return
        self._database_failures = 0
        if not claim.claimed:
            await self._not_claimed(message, claim)
            return

        message.claimed_notification_id = notification.notification_id
        message.attempts = claim.attempts
        structlog.contextvars.bind_contextvars(attempt=claim.attempts)
        result: SendResult | None = None
        error: SendError | None = None
        started = time.monotonic()
        try:
            # asyncio.timeout, not wait_for: wait_for runs the send in a task of its own.
            async with asyncio.timeout(self._settings.send_timeout_seconds):
                result = await self._provider.send_attempt(notification, attempt=claim.attempts)
        except SendError as exc:
            error = exc
        except TimeoutError:
            error = TransientSendError(
                f"no answer within {self._settings.send_timeout_seconds:g} s", code="timeout"
            )
        except Exception as exc:  # noqa: BLE001 - a provider bug must not lose the message
            log.exception("provider raised an unexpected error")
            error = TransientSendError(f"unexpected error: {_short(exc)}", code="unexpected")
        finally:
            call_seconds = time.monotonic() - started
            self._send_duration.observe(call_seconds)

        if result is not None:
            await self._succeeded(message, notification, result, call_seconds=call_seconds)
        elif isinstance(error, PermanentSendError):
            await self._failed_permanently(message, notification, error)
        else:
            assert error is not None
            await self._retry(message, error, notification=notification)

    async def _not_claimed(self, message: ReceivedMessage, claim: Claim) -> None:
        if claim.status is None:
            await self._dead_letter(message, reason="no delivery record for this notification", code="no_delivery")
        elif claim.status in FINAL_STATUSES:
            DUPLICATES_SKIPPED.labels(self.channel.value).inc()
            log.info("duplicate message: delivery already settled; deleting it unsent", status=claim.status.value)
            await self._delete(message)
        elif claim.status is DeliveryStatus.SENDING:
            # Another replica (or another copy here) is sending it now. Come back once its claim
            # has ended: by then it is settled (and this copy deleted) or its claim has expired.
            delay = math.ceil(claim.claim_remaining_seconds) + 1
            log.info("delivery is being sent under another claim; leaving this copy", claimed_by=claim.claimed_by)
            await self._set_visibility(message, delay)
        else:
            # Pending although the claim did not take: released between our two statements.
            await self._set_visibility(message, 1)

    # -- outcomes ------------------------------------------------------------------------

    async def _succeeded(
        self, message: ReceivedMessage, notification: NotificationMessage, result: SendResult, *, call_seconds: float
    ) -> None:
        self._sent.inc()
        # Retried for about a minute (RECORD_SENT): long enough to outlast a Postgres restart (the
        # zero-loss test's took over 4 s, and 3.5 s of retries left rows "sending" for good).
        # Meanwhile the heartbeat keeps the message invisible; only then is the row given up on
        # (the message is deleted anyway: the provider has it).
        for delay in (*RECORD_SENT.delays(), None):
            try:
                await self._deliveries.mark_sent(
                    notification_id=notification.notification_id,
                    channel=self.channel,
                    provider_message_id=result.provider_message_id,
                    provider=result.provider,
                )
                break
            except Exception as exc:  # noqa: BLE001 - retried, then given up on below
                if delay is None:
                    # The provider has it; a retry would send it twice. Prefer a stale status.
                    log.error(
                        "sent, but the delivery could not be recorded as sent; deleting the message anyway",
                        provider_message_id=result.provider_message_id,
                        error=_short(exc),
                    )
                    break
                await asyncio.sleep(delay)
        # The provider call's duration per delivery (the histogram has only its distribution):
        # bench/end_to_end.py subtracts it to tell the latency the system adds from the provider's.
        log.info(
            "sent",
            provider=result.provider,
            provider_message_id=result.provider_message_id,
            provider_call_seconds=round(call_seconds, 4),
        )
        message.claimed_notification_id = None
        await self._delete(message)

    async def _failed_permanently(
        self, message: ReceivedMessage, notification: NotificationMessage, error: SendError
    ) -> None:
        try:
            await self._deliveries.mark_failed(
                notification_id=notification.notification_id,
                channel=self.channel,
                claimed_by=self.instance_id,
                reason=error.reason,
                provider=error.provider,
            )
        except Exception as exc:  # noqa: BLE001 - keep the message: the next attempt records it
            await self._retry(
                message,
                TransientSendError(f"could not record permanent failure: {_short(exc)}", code="database_unavailable"),
                notification=notification,
            )
            return
        MESSAGES_FAILED.labels(self.channel.value, error.code).inc()
        log.warning("permanent failure; not retrying", reason=error.reason, code=error.code)
        message.claimed_notification_id = None
        await self._delete(message)

    async def _retry(
        self,
        message: ReceivedMessage,
        error: SendError,
        *,
        notification: NotificationMessage | None = None,
    ) -> None:
        """A transient failure: back off, or give up on the last receive (module docstring)."""
        claimed = notification is not None and message.claimed_notification_id is not None
        # Every provider open after this failure: an outage, in which receives are not attempts
        # (see _outlast_outage). Given up on only after max_receive_count real attempts (claims).
        outage = self._provider.seconds_until_each_may_probe()
        final = message.receive_count >= self._settings.max_receive_count and (
            outage == 0 or message.attempts >= self._settings.max_receive_count
        )
        reason = f"gave up after {message.receive_count} attempts: {error.reason}" if final else error.reason
        if claimed:
            assert notification is not None
            settle = self._deliveries.mark_failed if final else self._deliveries.release
            try:
                await settle(
                    notification_id=notification.notification_id,
                    channel=self.channel,
                    claimed_by=self.instance_id,
                    reason=reason,
                    provider=error.provider,
                )
            except Exception as exc:  # noqa: BLE001 - the claim expires on its own
                log.warning("could not record the failure", error=_short(exc))
            message.claimed_notification_id = None
        if final:
            MESSAGES_FAILED.labels(self.channel.value, "retries_exhausted").inc()
            log.error("giving up; the redrive policy moves the message to the dead-letter queue", reason=reason)
            await self._set_visibility(message, 0)
            return
        delay = compute_backoff(
            message.receive_count,
            base_seconds=self._settings.backoff_base_seconds,
            max_seconds=self._settings.backoff_max_seconds,
            retry_after=error.retry_after if isinstance(error, TransientSendError) else None,
        )
        MESSAGES_RETRIED.labels(self.channel.value).inc()
        if outage:
            # A failed probe waits, on top of its back-off, until each provider has had its next
            # probe: those take other messages, not this one's next receive.
            delay += math.ceil(outage)
            log.warning("transient failure; retrying later", reason=error.reason, code=error.code, retry_in_seconds=delay)
            await self._outlast_outage(message, delay)
            return
        log.warning("transient failure; retrying later", reason=error.reason, code=error.code, retry_in_seconds=delay)
        await self._set_visibility(message, delay)

    async def _outlast_outage(self, message: ReceivedMessage, delay: int) -> None:
        """Back a message off while every provider is open. On its last receive it is put back
        as a fresh copy (receive count 0) and the original deleted: the redrive policy would move
        it to the DLQ on its next receive, for an outage that is not its fault. The claim guards
        against the two copies both being sent, should the delete fail."""
        if message.receive_count < self._settings.max_receive_count:
            await self._set_visibility(message, delay)
            return
        try:
            await self._queue.requeue(message, delay_seconds=delay)
        except Exception as exc:  # noqa: BLE001 - then the redrive policy has it, as before
            log.warning("could not requeue the message during the provider outage", error=_short(exc))
            await self._set_visibility(message, delay)
            return
        log.info("requeued as a fresh copy: last receive, and every provider is open", delay_seconds=delay)
        message.claimed_notification_id = None
        await self._delete(message)

    def _paused_for_seconds(self) -> float:
        seconds = self._provider.seconds_until_available()
        if (seconds > 0) != self._providers_paused:
            self._providers_paused = seconds > 0
            if seconds > 0:
                log.warning("every provider's circuit breaker is open; pausing receiving", pause_seconds=round(seconds, 1))
            else:
                log.info("a provider may be called again; receiving resumes")
        return seconds

    def _one_at_a_time(self) -> bool:
        return self._provider.probing_only()

    async def _extend_leases(self) -> None:
        """Extend the claims of the deliveries being sent (the heartbeat calls it each beat)."""
        claimed: list[uuid.UUID] = [
            m.claimed_notification_id for m in list(self._in_flight) if m.claimed_notification_id is not None
        ]
        if claimed:
            await self._deliveries.extend_claims(
                notification_ids=claimed,
                channel=self.channel,
                claimed_by=self.instance_id,
                lease_seconds=self._settings.claim_lease_seconds,
            )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
