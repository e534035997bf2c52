"""How an email is sent: one SES (v1) SendEmail of the message's email subject and plain-text body, naming
the configuration set that publishes its receipts."""

from __future__ import annotations

from typing import Any

from shared.channels import Channel
from shared.failover import NamedProvider
from shared.messages import NotificationMessage
from shared.providers import AwsProvider, PermanentSendError, SendResult, classify_aws_error

from sender_email.settings import EmailSenderSettings

def email_providers(settings: EmailSenderSettings) -> list[NamedProvider]:
    """EMAIL_SENDER_PROVIDERS, in its order: SES in each region named ("ses" is AWS_REGION's)."""
    return [NamedProvider(name, EmailProvider(settings, region=settings.provider_region(name))) for name in settings.providers]


class EmailProvider(AwsProvider):
    channel = Channel.EMAIL
    service = "ses"

    def __init__(self, settings: EmailSenderSettings, *, region: str | None = None) -> None:
        super().__init__(settings, region=region)
        self._from_address = settings.email_from_address
        self._configuration_set = settings.email_configuration_set

    async def send(self, message: NotificationMessage) -> SendResult:
        address = message.recipient.email
        if not address:
            raise PermanentSendError("recipient has no email address", code="no_email")
        try:
            response = await self.client.send_email(**email_request(message, self._from_address, self._configuration_set))
        except Exception as exc:  # noqa: BLE001 - every botocore error is classified
            raise classify_aws_error(exc) from exc
        return SendResult(provider_message_id=response.get("MessageId"))


def email_request(message: NotificationMessage, from_address: str, configuration_set: str) -> dict[str, Any]:
    """SendEmail's arguments for a notification; the configuration set publishes its receipts."""
    content = message.email_content()
    return {
        "Source": from_address,
        "Destination": {"ToAddresses": [message.recipient.email]},
        "Message": {
            "Subject": {"Data": content.subject, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": content.body, "Charset": "UTF-8"}},
        },
        "ConfigurationSetName": configuration_set,
    }
