"""The SMS sender's reader of SNS delivery status logs (receipts), a background task of its process.

SNS writes a record per SMS to CloudWatch Logs (groups ``sns/<region>/<account>/
DirectPublishToPhoneNumber`` and ``.../Failure``, once delivery status logging is on: Terraform
sets it). Every ``poll_seconds`` the reader asks each group with FilterLogEvents for the events
from its cursor on; the cursor is the newest event time seen minus ``overlap_seconds``, because
CloudWatch Logs makes events searchable a little after their timestamps (an event written late
into an already-read window is read on the next poll). Each event is applied as a receipt
(``shared/receipts.py``); reading one twice is harmless (its eventId is the receipt's id, and the
reader also skips ids it applied recently).

An event whose message id no delivery has yet (the ``sent`` write not committed) is kept and
tried again on every poll for ``unknown_retry_seconds``, then counted and dropped. A record that is
not as documented is logged and skipped. Trouble with CloudWatch Logs or the database: the poll
stops, the cursor stays, the next poll tries again. At shutdown the reader stops between polls;
a restarted reader starts ``overlap_seconds`` before its start time (a receipt written while no
reader ran for longer than that is not read: the README says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sender_sms.receipts import MalformedRecordError, sms_receipt
from shared.logging import get_logger
from shared.receipts import Receipt, ReceiptOutcome, ReceiptRepository
from shared.sender_metrics import RECEIPTS

log = get_logger(__name__)

# Event ids applied recently, kept to skip re-reads of the overlap without a database statement.
SEEN_EVENT_IDS = 10_000


def delivery_log_groups(region: str, account: str) -> tuple[str, str]:
    """The two groups SNS writes SMS delivery status records to."""
    base = f"sns/{region}/{account}/DirectPublishToPhoneNumber"
    return base, f"{base}/Failure"


class SmsDeliveryLogReader:
    def __init__(
        self,
        *,
        logs: Any,
        receipts: ReceiptRepository,
        log_groups: Sequence[str],
        overlap_seconds: float,
        unknown_retry_seconds: float,
        now: Any = time.time,
    ) -> None:
        self._logs = logs
        self._receipts = receipts
        self._overlap_ms = int(overlap_seconds * 1000)
        self._unknown_retry_seconds = unknown_retry_seconds
        self._now = now
        started_ms = int(now() * 1000)
        # Per group: the newest event time read (ms); reading starts overlap_seconds before start.
        self._newest_ms = {group: started_ms for group in log_groups}
        self._seen: OrderedDict[str, None] = OrderedDict()
        # Receipts of message ids no delivery has yet, by event id, with when they were first read.
        self._unknown: dict[str, tuple[Receipt, float]] = {}

    async def run(self, stop: asyncio.Event, *, poll_seconds: float) -> None:
        while not stop.is_set():
            try:
                await self.poll()
            except Exception as exc:  # noqa: BLE001 - the cursor stays; the next poll tries again
                log.warning("reading SMS delivery logs failed", error=f"{type(exc).__name__}: {exc}"[:500])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)

    async def poll(self) -> None:
        """Read every group from its cursor on and apply what was read; then retry the unknown ones."""
        retrying, self._unknown = self._unknown, {}
        for group in self._newest_ms:
            async for event in self._events(group):
                self._newest_ms[group] = max(self._newest_ms[group], event["timestamp"])
                event_id = event["eventId"]
                if event_id in self._seen or event_id in retrying:
                    continue
                try:
                    receipt = sms_receipt(event_id, event["message"])
                except MalformedRecordError as exc:
                    log.warning("skipping an SMS delivery log event", event_id=event_id, reason=str(exc))
                    self._remember(event_id)
                    continue
                await self._apply(receipt, first_read=self._now())
        for receipt, first_read in retrying.values():
            await self._apply(receipt, first_read=first_read)

    async def _events(self, group: str):  # noqa: ANN202 - an async iterator of log events
        start = self._newest_ms[group] - self._overlap_ms
        paginator = self._logs.get_paginator("filter_log_events")
        try:
            async for page in paginator.paginate(logGroupName=group, startTime=start, interleaved=True):
                for event in page.get("events", []):
                    yield event
        except Exception as exc:
            # The group appears with SNS's first record of its kind: until then there is nothing to read.
            if "ResourceNotFoundException" in type(exc).__name__ or "ResourceNotFound" in str(exc):
                return
            raise

    async def _apply(self, receipt: Receipt, *, first_read: float) -> None:
        outcome = await self._receipts.apply(receipt)
        if outcome is ReceiptOutcome.UNKNOWN:
            if self._now() - first_read < self._unknown_retry_seconds:
                self._unknown[receipt.provider_event_id] = (receipt, first_read)
                RECEIPTS.labels("sms", "unknown_retried").inc()
                return
            RECEIPTS.labels("sms", "unknown_dropped").inc()
            log.warning("SMS receipt for a message id no delivery has; dropping it", provider_message_id=receipt.provider_message_id)
        else:
            RECEIPTS.labels("sms", outcome.value).inc()
            log.info("receipt", provider_message_id=receipt.provider_message_id, receipt_event=receipt.event, outcome=outcome.value)
        self._remember(receipt.provider_event_id)

    def _remember(self, event_id: str) -> None:
        self._seen[event_id] = None
        if len(self._seen) > SEEN_EVENT_IDS:
            self._seen.popitem(last=False)
