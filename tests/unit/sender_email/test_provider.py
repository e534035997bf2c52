"""EmailProvider: the SES SendEmail it makes and how it classifies SES's answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError

from sender_email.provider import EmailProvider, email_providers
from sender_email.settings import EmailSenderSettings
from shared.messages import ChannelContent, EmailContent, NotificationMessage, RecipientSnapshot
from shared.providers import PermanentSendError, ProviderAccountError, TransientSendError
from shared.topology import Channel


class FakeSes:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def send_email(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"MessageId": "ses-message-1"}


def email(*, address: str | None = "ada@example.com", subject: str | None = "Your invoice") -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", email=address, phone_number="+14155552671"),
        message="Invoice 42 is ready.",
        subject=subject,
        channels=[Channel.EMAIL],
        client="billing",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def provider_with(ses: FakeSes, **settings: Any) -> EmailProvider:
    provider = EmailProvider(EmailSenderSettings(**settings))
    provider.client = ses
    return provider


class TestSend:
    async def test_sends_a_plain_text_email_from_the_configured_address(self) -> None:
        ses = FakeSes()
        result = await provider_with(ses).send(email())
        assert result.provider_message_id == "ses-message-1"
        assert ses.calls == [
            {
                "Source": "sender@notifications.com",
                "Destination": {"ToAddresses": ["ada@example.com"]},
                "Message": {
                    "Subject": {"Data": "Your invoice", "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": "Invoice 42 is ready.", "Charset": "UTF-8"}},
                },
                "ConfigurationSetName": "notifications",
            }
        ]

    async def test_names_the_configured_configuration_set(self) -> None:
        ses = FakeSes()
        await provider_with(ses, email_configuration_set="receipts-eu").send(email())
        assert ses.calls[0]["ConfigurationSetName"] == "receipts-eu"

    async def test_default_subject_and_configured_from_address(self) -> None:
        ses = FakeSes()
        await provider_with(ses, email_from_address="alerts@example.org").send(email(subject=None))
        assert ses.calls[0]["Source"] == "alerts@example.org"
        assert ses.calls[0]["Message"]["Subject"]["Data"] == "Notification"

    async def test_a_templates_rendering_sends_its_subject_and_body(self) -> None:
        ses = FakeSes()
        content = ChannelContent(email=EmailContent(subject="Invoice 42 for Ada", body="Dear Ada, ..."))
        await provider_with(ses).send(NotificationMessage(**{**email().model_dump(exclude={"message", "subject"}), "content": content}))
        assert ses.calls[0]["Message"] == {
            "Subject": {"Data": "Invoice 42 for Ada", "Charset": "UTF-8"},
            "Body": {"Text": {"Data": "Dear Ada, ...", "Charset": "UTF-8"}},
        }

    async def test_recipient_without_email_is_permanent(self) -> None:
        ses = FakeSes()
        with pytest.raises(PermanentSendError, match="no email address"):
            await provider_with(ses).send(email(address=None))
        assert ses.calls == []


class TestErrorClassification:
    @pytest.mark.parametrize("code", ["MessageRejected", "InvalidParameterValue"])
    async def test_rejected_address_is_permanent(self, code: str) -> None:
        error = ClientError({"Error": {"Code": code, "Message": "Address blacklisted."}}, "SendEmail")
        with pytest.raises(PermanentSendError) as caught:
            await provider_with(FakeSes(error)).send(email())
        assert caught.value.reason == f"{code}: Address blacklisted."

    @pytest.mark.parametrize(
        "error",
        [
            ClientError({"Error": {"Code": "Throttling", "Message": "Maximum sending rate exceeded."}}, "SendEmail"),
            ClientError({"Error": {"Code": "ServiceUnavailable", "Message": ""}}, "SendEmail"),
            ConnectTimeoutError(endpoint_url="http://localhost:4566"),
        ],
    )
    async def test_throttling_outages_and_timeouts_are_transient(self, error: Exception) -> None:
        with pytest.raises(TransientSendError):
            await provider_with(FakeSes(error)).send(email())

    @pytest.mark.parametrize(
        "message",
        [
            # SES's own words, and moto's.
            "Email address is not verified. The following identities failed the check in region US-EAST-1: sender@notifications.com",
            "Email address not verified sender@notifications.com",
        ],
    )
    async def test_an_identity_this_region_has_not_verified_is_our_configuration(self, message: str) -> None:
        error = ClientError({"Error": {"Code": "MessageRejected", "Message": message}}, "SendEmail")
        with pytest.raises(ProviderAccountError) as caught:
            await provider_with(FakeSes(error)).send(email())
        assert caught.value.code == "message_rejected"


class TestProviders:
    def test_each_provider_is_ses_in_its_region(self) -> None:
        named = email_providers(EmailSenderSettings(providers="ses,ses:eu-west-1", aws_region="us-west-2"))
        assert [(entry.name, entry.provider.region) for entry in named] == [("ses", "us-west-2"), ("ses:eu-west-1", "eu-west-1")]

    def test_the_default_is_ses_in_aws_region(self) -> None:
        [entry] = email_providers(EmailSenderSettings())
        assert (entry.name, entry.provider.region) == ("ses", "us-east-1")
