"""The email receipts consumer: SES events from the ``email_events`` queue applied to deliveries.

It runs in the email sender's process, on the shared consumer runtime (``shared/consumer.py``:
receiving, heartbeat, deletes, dead-lettering and shutdown are the runtime's). What happens to
one message:

- *A receipt* (Delivery, Bounce, Complaint, Reject, Rendering Failure): applied in one statement
  (``shared/receipts.py``), then deleted. A duplicate is deleted too: nothing changes.
- *Not a receipt* (Send, Open, Click, DeliveryDelay ... if the configuration set ever publishes
  them): deleted, counted ``ignored``.
- *Unreadable* (not an SNS notification holding an SES event as documented): copied to
  ``email_events_dlq`` with the reason, deleted.
- *No delivery has its message id*: the ``sent`` write may not be committed yet, so it is left on
  the queue with backoff (at most a minute apart) until it has been on the queue for
  ``receipts_unknown_retry_seconds``; then it is counted ``unknown_dropped`` and deleted.
- *Database unavailable*: left on the queue with backoff, receiving paused as for sends; after
  ``EMAIL_EVENTS_MAX_RECEIVE_COUNT`` receives the redrive policy moves it to the DLQ.
- *Crash or shutdown*: an unsettled message reappears after its visibility timeout; applying it
  again is a duplicate.
"""

from __future__ import annotations

import time

import structlog

from sender_email.receipts import MalformedEventError, email_receipt
from shared.backoff import compute_backoff
from shared.consumer import QueueConsumer
from shared.database import is_database_unavailable
from shared.logging import get_logger
from shared.receipts import UNKNOWN_RECEIPT_MAX_BACKOFF_SECONDS, ReceiptOutcome, ReceiptRepository
from shared.sender_metrics import RECEIPTS
from shared.sender_settings import SenderSettings
from shared.sqs_queue import ReceivedMessage, SqsQueue

log = get_logger(__name__)


class EmailReceiptConsumer(QueueConsumer):
    def __init__(
        self,
        *,
        settings: SenderSettings,
        queue: SqsQueue,
        receipts: ReceiptRepository,
        instance_id: str,
        unknown_retry_seconds: float,
    ) -> None:
        super().__init__(settings=settings, queue=queue, instance_id=instance_id, label=queue.queue_name)
        self._receipts = receipts
        self._unknown_retry_seconds = unknown_retry_seconds

    async def _process(self, message: ReceivedMessage) -> None:
        message.started = True
        try:
            receipt = email_receipt(message.body)
        except MalformedEventError as exc:
            await self._dead_letter(message, reason=str(exc), code="unparseable")
            return
        if receipt is None:
            RECEIPTS.labels("email", "ignored").inc()
            await self._delete(message)
            return
        structlog.contextvars.bind_contextvars(provider_message_id=receipt.provider_message_id, receipt_event=receipt.event)
        try:
            outcome = await self._receipts.apply(receipt)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the event must survive it
            if is_database_unavailable(exc):
                self._pause_receiving()
            else:
                log.exception("applying the receipt failed")
            await self._back_off(message)
            return
        self._database_failures = 0
        if outcome is ReceiptOutcome.UNKNOWN:
            if time.time() - message.sent_at < self._unknown_retry_seconds:
                RECEIPTS.labels("email", "unknown_retried").inc()
                await self._back_off(message)
                return
            RECEIPTS.labels("email", "unknown_dropped").inc()
            log.warning("receipt for a message id no delivery has; dropping it", waited_seconds=round(time.time() - message.sent_at))
        else:
            RECEIPTS.labels("email", outcome.value).inc()
            log.info("receipt", outcome=outcome.value)
        await self._delete(message)

    async def _back_off(self, message: ReceivedMessage) -> None:
        delay = compute_backoff(
            message.receive_count,
            base_seconds=self._settings.backoff_base_seconds,
            max_seconds=min(self._settings.backoff_max_seconds, UNKNOWN_RECEIPT_MAX_BACKOFF_SECONDS),
        )
        await self._set_visibility(message, delay)
