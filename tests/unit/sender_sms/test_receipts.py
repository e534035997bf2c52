"""sms_receipt: SNS SMS delivery status log records (as AWS documents them) read as receipts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from harness.sms_delivery_logs import sms_record
from sender_sms.receipts import MalformedRecordError, sms_receipt
from shared.receipts import ReceiptEffect


def record(status: str, response: str) -> str:
    return json.dumps(sms_record("34d9b400-c6dd-5444-820d-fbeb0f1f54cf", "+1432XXX0766", status, response))


class TestSmsReceipt:
    def test_success_delivers_at_the_records_time_in_utc(self) -> None:
        receipt = sms_receipt("event-1", record("SUCCESS", "Message has been accepted by phone carrier"))
        assert receipt.effect is ReceiptEffect.DELIVERED
        assert (receipt.provider_message_id, receipt.provider_event_id) == ("34d9b400-c6dd-5444-820d-fbeb0f1f54cf", "event-1")
        assert receipt.at == datetime(2016, 6, 28, 0, 40, 34, 558000, tzinfo=UTC)
        assert receipt.detail["dwellTimeMs"] == 599

    def test_failure_fails_with_the_providers_response(self) -> None:
        receipt = sms_receipt("event-2", record("FAILURE", "Unknown error attempting to reach phone"))
        assert receipt.effect is ReceiptEffect.FAILED
        assert receipt.reason == "carrier did not deliver it: Unknown error attempting to reach phone"
        assert receipt.suppress is None

    @pytest.mark.parametrize("response", ["Phone is currently opted out", "Phone number is opted out"])
    def test_an_opted_out_number_is_suppressed(self, response: str) -> None:
        assert sms_receipt("event-3", record("FAILURE", response)).suppress == f"opted out: {response}"

    @pytest.mark.parametrize("message", ["{}", "not json", json.dumps({"notification": {"messageId": "m", "timestamp": "2016-06-28 00:40:34.558"}, "status": "PENDING"})])
    def test_what_is_not_a_record_as_documented_is_malformed(self, message: str) -> None:
        with pytest.raises(MalformedRecordError):
            sms_receipt("event-4", message)
