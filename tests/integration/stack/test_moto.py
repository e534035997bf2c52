"""stack/moto.py: moto's server, and what it reports as sent."""

from __future__ import annotations

from harness.aws import aws_client
from stack.moto import MotoServer


class TestMotoServer:
    def test_sms_published_through_sns_is_read_back(self, moto: MotoServer) -> None:
        aws_client("sns", moto.endpoint_url).publish(PhoneNumber="+14155552671", Message="Your code is 1234")

        assert {"phone_number": "+14155552671", "message": "Your code is 1234"}.items() <= moto.sent_sms()[-1].items()

    def test_email_sent_through_ses_v1_is_read_back(self, moto: MotoServer) -> None:
        ses = aws_client("ses", moto.endpoint_url)
        ses.verify_email_identity(EmailAddress="sender@notifications.com")
        ses.send_email(
            Source="sender@notifications.com",
            Destination={"ToAddresses": ["demo@example.com"]},
            Message={"Subject": {"Data": "Greetings"}, "Body": {"Text": {"Data": "Hello, demo"}}},
        )

        sent = moto.sent_emails()[-1]
        assert sent["source"] == "sender@notifications.com"
        assert sent["destination"] == ["demo@example.com"]
        assert (sent["subject"], sent["body"]) == ("Greetings", "Hello, demo")

    def test_raw_email_is_parsed(self, moto: MotoServer) -> None:
        ses = aws_client("ses", moto.endpoint_url)
        ses.verify_email_identity(EmailAddress="sender@notifications.com")
        ses.send_raw_email(
            Source="sender@notifications.com",
            Destinations=["demo@example.com"],
            RawMessage={"Data": "From: sender@notifications.com\nTo: demo@example.com\nSubject: Raw\n\nRaw body\n"},
        )

        sent = moto.sent_emails()[-1]
        assert sent["destination"] == ["demo@example.com"]
        assert (sent["subject"], sent["body"].strip()) == ("Raw", "Raw body")

    def test_reset_forgets_everything(self, moto: MotoServer) -> None:
        aws_client("sns", moto.endpoint_url).publish(PhoneNumber="+14155552671", Message="before reset")
        moto.reset()
        assert moto.sent_sms() == []
