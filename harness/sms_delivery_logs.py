"""SNS SMS delivery status log records shaped as "Viewing Amazon CloudWatch metrics and logs for
SMS deliveries" shows them, with the message id and number of an SMS a test sent (write them
with ``harness.aws.Aws.write_sms_delivery_logs``)."""

from __future__ import annotations

ACCEPTED_BY_CARRIER = "Message has been accepted by phone carrier"


def sms_record(message_id: str, phone_number: str, status: str = "SUCCESS", response: str = ACCEPTED_BY_CARRIER) -> dict:
    return {
        "notification": {"messageId": message_id, "timestamp": "2016-06-28 00:40:34.558"},
        "delivery": {
            "phoneCarrier": "My Phone Carrier",
            "mnc": 270,
            "destination": phone_number,
            "priceInUSD": 0.00645,
            "smsType": "Transactional",
            "mcc": 310,
            "providerResponse": response,
            "dwellTimeMs": 599,
            "dwellTimeMsUntilDeviceAck": 1344,
        },
        "status": status,
    }
