"""SmsDeliveryLogReader: the window it asks for, what it skips, and receipts of unknown message ids."""

from __future__ import annotations

import json
from typing import Any

from sender_sms.delivery_logs import SmsDeliveryLogReader, delivery_log_groups
from shared.receipts import Receipt, ReceiptOutcome

SUCCESS, FAILURE = delivery_log_groups("us-east-1", "123456789012")


def event(event_id: str, timestamp_ms: int, message_id: str = "m-1", status: str = "SUCCESS") -> dict[str, Any]:
    record = {
        "notification": {"messageId": message_id, "timestamp": "2016-06-28 00:40:34.558"},
        "delivery": {"destination": "+14155552671", "providerResponse": "Message has been accepted by phone carrier", "dwellTimeMs": 599},
        "status": status,
    }
    return {"eventId": event_id, "timestamp": timestamp_ms, "message": json.dumps(record)}


class FakeLogs:
    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {SUCCESS: [], FAILURE: []}
        self.asked: list[tuple[str, int]] = []

    def get_paginator(self, name: str) -> FakeLogs:
        assert name == "filter_log_events"
        return self

    async def paginate(self, *, logGroupName: str, startTime: int, interleaved: bool):  # noqa: N803 - the API's names
        self.asked.append((logGroupName, startTime))
        yield {"events": [e for e in self.events[logGroupName] if e["timestamp"] >= startTime]}


class FakeReceipts:
    def __init__(self) -> None:
        self.known: set[str] = set()
        self.applied: list[Receipt] = []

    async def apply(self, receipt: Receipt) -> ReceiptOutcome:
        self.applied.append(receipt)
        return ReceiptOutcome.APPLIED if receipt.provider_message_id in self.known else ReceiptOutcome.UNKNOWN


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reader(logs: FakeLogs, receipts: FakeReceipts, clock: Clock) -> SmsDeliveryLogReader:
    return SmsDeliveryLogReader(
        logs=logs, receipts=receipts, log_groups=(SUCCESS, FAILURE), overlap_seconds=60, unknown_retry_seconds=300, now=clock
    )


class TestPoll:
    async def test_reads_each_group_from_the_newest_event_minus_the_overlap(self) -> None:
        logs, receipts, clock = FakeLogs(), FakeReceipts(), Clock(1_000.0)
        receipts.known.add("m-1")
        subject = reader(logs, receipts, clock)
        await subject.poll()
        assert logs.asked == [(SUCCESS, 940_000), (FAILURE, 940_000)]  # its start minus the overlap
        logs.events[SUCCESS].append(event("e-1", 1_200_000))
        logs.asked.clear()
        await subject.poll()
        await subject.poll()
        assert logs.asked[-2:] == [(SUCCESS, 1_140_000), (FAILURE, 940_000)]
        # Read on three polls (the overlap), applied once.
        assert [r.provider_event_id for r in receipts.applied] == ["e-1"]

    async def test_an_unknown_message_id_is_tried_again_then_dropped(self) -> None:
        logs, receipts, clock = FakeLogs(), FakeReceipts(), Clock(1_000.0)
        logs.events[FAILURE].append(event("e-2", 1_000_000, message_id="m-late", status="FAILURE"))
        subject = reader(logs, receipts, clock)
        await subject.poll()
        clock.now += 10
        await subject.poll()
        assert [r.provider_event_id for r in receipts.applied] == ["e-2", "e-2"]  # once per poll, not per read
        receipts.known.add("m-late")
        await subject.poll()
        clock.now += 400
        await subject.poll()
        assert len(receipts.applied) == 3  # applied at last, and not again

    async def test_a_receipt_still_unknown_after_the_window_is_dropped(self) -> None:
        logs, receipts, clock = FakeLogs(), FakeReceipts(), Clock(1_000.0)
        logs.events[SUCCESS].append(event("e-3", 1_000_000, message_id="m-never"))
        subject = reader(logs, receipts, clock)
        await subject.poll()
        clock.now += 301
        await subject.poll()
        await subject.poll()
        assert len(receipts.applied) == 2

    async def test_a_record_not_as_documented_is_skipped(self) -> None:
        logs, receipts, clock = FakeLogs(), FakeReceipts(), Clock(1_000.0)
        logs.events[SUCCESS].append({"eventId": "e-4", "timestamp": 1_000_000, "message": "not json"})
        await reader(logs, receipts, clock).poll()
        assert receipts.applied == []
