"""SES events shaped exactly as "Examples of event data that Amazon SES publishes to Amazon SNS"
(docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-examples.html) shows them,
with the message id and address of the email a test sent (publish them with
``harness.aws.Aws.publish_email_event``)."""

from __future__ import annotations

import secrets


def ses_mail(message_id: str, address: str) -> dict:
    return {
        "timestamp": "2017-08-05T00:40:02.012Z",
        "source": "Sender Name <sender@notifications.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@notifications.com",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": [address],
        "headersTruncated": False,
        "headers": [{"name": "From", "value": "Sender Name <sender@notifications.com>"}, {"name": "To", "value": address}],
        "commonHeaders": {"from": ["Sender Name <sender@notifications.com>"], "to": [address], "subject": "Message sent from Amazon SES"},
        "tags": {"ses:configuration-set": ["notifications"], "ses:source-ip": ["192.0.2.0"]},
    }


def ses_delivery(message_id: str, address: str) -> dict:
    return {
        "eventType": "Delivery",
        "mail": ses_mail(message_id, address),
        "delivery": {
            "timestamp": "2016-10-19T23:21:04.133Z",
            "processingTimeMillis": 11893,
            "recipients": [address],
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "mta.example.com",
        },
    }


def ses_bounce(message_id: str, address: str, bounce_type: str = "Permanent", subtype: str = "General") -> dict:
    return {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": subtype,
            "bouncedRecipients": [
                {"emailAddress": address, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
            ],
            "timestamp": "2017-08-05T00:41:02.669Z",
            "feedbackId": f"01000157c44f053b-{secrets.token_hex(8)}-000000",
            "reportingMTA": "dsn; mta.example.com",
        },
        "mail": ses_mail(message_id, address),
    }


def ses_complaint(message_id: str, address: str) -> dict:
    return {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": address}],
            "timestamp": "2017-08-05T00:41:02.669Z",
            "feedbackId": f"01000157c44f053b-{secrets.token_hex(8)}-000000",
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2017-08-05T00:41:02.669Z",
        },
        "mail": ses_mail(message_id, address),
    }
