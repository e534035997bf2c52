"""SmsProvider: the SNS Publish it makes and how it classifies SNS's answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from sender_sms.provider import SmsProvider
from sender_sms.settings import SmsSenderSettings
from shared.messages import ChannelContent, EmailContent, NotificationMessage, RecipientSnapshot, SmsContent
from shared.providers import PermanentSendError, TransientSendError
from shared.topology import Channel


class FakeSns:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def publish(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"MessageId": "sns-message-1"}


def sms(phone_number: str | None = "+14155552671") -> NotificationMessage:
    return NotificationMessage(
        notification_id=uuid.uuid4(),
        recipient=RecipientSnapshot(name="ada", phone_number=phone_number, email="ada@example.com"),
        message="Your code is 1234",
        channels=[Channel.SMS],
        client="billing",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def provider_with(sns: FakeSns, **settings: Any) -> SmsProvider:
    provider = SmsProvider(SmsSenderSettings(**settings))
    provider.client = sns
    return provider


class TestSend:
    async def test_publishes_a_transactional_sms(self) -> None:
        sns = FakeSns()
        result = await provider_with(sns).send(sms())
        assert result.provider_message_id == "sns-message-1"
        assert sns.calls == [
            {
                "PhoneNumber": "+14155552671",
                "Message": "Your code is 1234",
                "MessageAttributes": {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}},
            }
        ]

    async def test_a_templates_rendering_sends_its_sms_text(self) -> None:
        sns = FakeSns()
        content = ChannelContent(sms=SmsContent(body="Hi Ada, code 1234"), email=EmailContent(subject="S", body="B"))
        message = NotificationMessage(**{**sms().model_dump(exclude={"message"}), "content": content})
        await provider_with(sns).send(message)
        assert sns.calls[0]["Message"] == "Hi Ada, code 1234"

    async def test_sender_id_and_origination_number_when_configured(self) -> None:
        sns = FakeSns()
        await provider_with(sns, sms_sender_id="ACME", sms_origination_number="+18005550100").send(sms())
        attributes = sns.calls[0]["MessageAttributes"]
        assert attributes["AWS.SNS.SMS.SenderID"] == {"DataType": "String", "StringValue": "ACME"}
        assert attributes["AWS.MM.SMS.OriginationNumber"] == {"DataType": "String", "StringValue": "+18005550100"}

    async def test_recipient_without_phone_number_is_permanent(self) -> None:
        sns = FakeSns()
        with pytest.raises(PermanentSendError, match="no phone number"):
            await provider_with(sns).send(sms(phone_number=None))
        assert sns.calls == []


class TestErrorClassification:
    async def test_invalid_number_is_permanent(self) -> None:
        error = ClientError(
            {"Error": {"Code": "InvalidParameter", "Message": "Invalid parameter: PhoneNumber"}}, "Publish"
        )
        with pytest.raises(PermanentSendError) as caught:
            await provider_with(FakeSns(error)).send(sms())
        assert caught.value.reason == "InvalidParameter: Invalid parameter: PhoneNumber"

    @pytest.mark.parametrize(
        "error",
        [
            ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish"),
            ClientError({"Error": {"Code": "InternalError", "Message": "oops"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "Publish"),
            EndpointConnectionError(endpoint_url="http://localhost:4566"),
        ],
    )
    async def test_throttling_5xx_and_connection_errors_are_transient(self, error: Exception) -> None:
        with pytest.raises(TransientSendError):
            await provider_with(FakeSns(error)).send(sms())
