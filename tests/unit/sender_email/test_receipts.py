"""email_receipt: SES events, in SNS envelopes as email_events delivers them, read as receipts.
The events are the shapes of AWS's "Examples of event data that Amazon SES publishes to Amazon SNS"."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sender_email.receipts import MalformedEventError, email_receipt
from shared.channels import Channel
from shared.receipts import ReceiptEffect

MAIL = {
    "timestamp": "2017-08-05T00:40:02.012Z",
    "source": "Sender Name <sender@example.com>",
    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
    "sendingAccountId": "123456789012",
    "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
    "destination": ["recipient@example.com"],
}
BOUNCE = {
    "eventType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {"emailAddress": "recipient@example.com", "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
        ],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    },
    "mail": MAIL,
}
COMPLAINT = {
    "eventType": "Complaint",
    "complaint": {
        "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "01000157c4e6d4ea-e7ee1d5b-9236-11e6-9ed1-8fde5example-000000",
        "userAgent": "Mozilla/5.0",
        "complaintFeedbackType": "abuse",
        "arrivalDate": "2017-08-05T00:41:02.669Z",
    },
    "mail": MAIL,
}
DELIVERY = {
    "eventType": "Delivery",
    "mail": MAIL,
    "delivery": {
        "timestamp": "2016-10-19T23:21:04.133Z",
        "processingTimeMillis": 11893,
        "recipients": ["recipient@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "mta.example.com",
    },
}
REJECT = {"eventType": "Reject", "mail": MAIL, "reject": {"reason": "Bad content"}}
RENDERING_FAILURE = {
    "eventType": "Rendering Failure",
    "mail": MAIL,
    "failure": {"errorMessage": "Attribute 'attributeName' is not present in the rendering data.", "templateName": "MyTemplate"},
}


def in_envelope(event: dict[str, Any]) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:us-east-1:1:email_events", "Message": json.dumps(event)})


class TestEmailReceipt:
    def test_delivery_delivers_at_the_delivery_timestamp(self) -> None:
        receipt = email_receipt(in_envelope(DELIVERY))
        assert receipt is not None
        assert (receipt.channel, receipt.provider_message_id, receipt.event) == (Channel.EMAIL, MAIL["messageId"], "Delivery")
        assert receipt.effect is ReceiptEffect.DELIVERED
        assert receipt.at == datetime(2016, 10, 19, 23, 21, 4, 133000, tzinfo=UTC)
        assert receipt.detail["smtpResponse"] == "250 2.6.0 Message received"
        assert receipt.suppress is None

    def test_permanent_bounce_fails_and_suppresses_with_the_diagnostic(self) -> None:
        receipt = email_receipt(in_envelope(BOUNCE))
        assert receipt is not None
        assert receipt.effect is ReceiptEffect.FAILED
        assert (receipt.type, receipt.subtype) == ("Permanent", "General")
        assert receipt.reason == receipt.suppress == "bounced (Permanent/General): smtp; 550 5.1.1 user unknown"
        assert receipt.provider_event_id == BOUNCE["bounce"]["feedbackId"]

    @pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
    def test_other_bounces_are_only_recorded(self, bounce_type: str) -> None:
        receipt = email_receipt(in_envelope({**BOUNCE, "bounce": {**BOUNCE["bounce"], "bounceType": bounce_type}}))
        assert receipt is not None
        assert receipt.effect is ReceiptEffect.RECORDED
        assert receipt.reason is None and receipt.suppress is None

    def test_complaint_is_recorded_and_suppresses(self) -> None:
        receipt = email_receipt(in_envelope(COMPLAINT))
        assert receipt is not None
        assert receipt.effect is ReceiptEffect.RECORDED
        assert receipt.type == "abuse"
        assert receipt.suppress == "complaint (abuse)"

    @pytest.mark.parametrize(("event", "reason"), [(REJECT, "rejected by SES: Bad content"), (RENDERING_FAILURE, "SES could not render it: Attribute")])
    def test_reject_and_rendering_failure_fail(self, event: dict[str, Any], reason: str) -> None:
        receipt = email_receipt(in_envelope(event))
        assert receipt is not None
        assert receipt.effect is ReceiptEffect.FAILED
        assert receipt.reason is not None and receipt.reason.startswith(reason)
        assert receipt.at == datetime(2017, 8, 5, 0, 40, 2, 12000, tzinfo=UTC)  # no time of its own: the mail's

    def test_identity_notifications_name_the_type_notification_type(self) -> None:
        event = {key: value for key, value in BOUNCE.items() if key != "eventType"} | {"notificationType": "Bounce"}
        receipt = email_receipt(in_envelope(event))
        assert receipt is not None and receipt.event == "Bounce"

    def test_a_delivery_read_twice_has_the_same_event_id(self) -> None:
        first, second = email_receipt(in_envelope(DELIVERY)), email_receipt(in_envelope(DELIVERY))
        assert first is not None and second is not None and first.provider_event_id == second.provider_event_id

    @pytest.mark.parametrize("kind", ["Send", "Open", "Click", "DeliveryDelay"])
    def test_events_that_are_not_receipts_are_none(self, kind: str) -> None:
        assert email_receipt(in_envelope({"eventType": kind, "mail": MAIL})) is None

    @pytest.mark.parametrize(
        "body",
        ["not json", json.dumps({"Message": "not json"}), in_envelope({"eventType": "Delivery"}), in_envelope({"eventType": "Bounce", "mail": MAIL})],
    )
    def test_what_is_not_an_ses_event_as_documented_is_malformed(self, body: str) -> None:
        with pytest.raises(MalformedEventError):
            email_receipt(body)
