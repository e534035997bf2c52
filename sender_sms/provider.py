"""How an SMS is sent: one SNS Publish of the message's SMS text to the recipient's phone number, as a
transactional SMS."""

from __future__ import annotations

from shared.channels import Channel
from shared.messages import NotificationMessage
from shared.providers import AwsProvider, PermanentSendError, SendResult, classify_aws_error

from sender_sms.settings import SmsSenderSettings


class SmsProvider(AwsProvider):
    channel = Channel.SMS
    service = "sns"

    def __init__(self, settings: SmsSenderSettings) -> None:
        super().__init__(settings)
        self._attributes = sms_attributes(settings)

    async def send(self, message: NotificationMessage) -> SendResult:
        phone_number = message.recipient.phone_number
        if not phone_number:
            raise PermanentSendError("recipient has no phone number", code="no_phone_number")
        try:
            response = await self.client.publish(
                PhoneNumber=phone_number, Message=message.sms_content().body, MessageAttributes=self._attributes
            )
        except Exception as exc:  # noqa: BLE001 - every botocore error is classified
            raise classify_aws_error(exc) from exc
        return SendResult(provider_message_id=response.get("MessageId"))


def sms_attributes(settings: SmsSenderSettings) -> dict[str, dict[str, str]]:
    # Transactional: delivered with priority (one-time codes, alerts), not as marketing.
    attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
    if settings.sms_sender_id:
        attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": settings.sms_sender_id}
    if settings.sms_origination_number:
        attributes["AWS.MM.SMS.OriginationNumber"] = {
            "DataType": "String",
            "StringValue": settings.sms_origination_number,
        }
    return attributes
