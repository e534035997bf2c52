"""How an email is sent: one SES (v1) SendEmail with a plain-text body."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from shared.aws import aws_clients
from shared.messages import NotificationMessage
from shared.providers import (
    PermanentSendError,
    Provider,
    SendResult,
    aws_provider_config,
    classify_aws_error,
)
from shared.channels import Channel

from sender_email.settings import EmailSenderSettings

DEFAULT_SUBJECT = "Notification"


class EmailProvider(Provider):
    channel = Channel.EMAIL

    def __init__(self, settings: EmailSenderSettings) -> None:
        self._settings = settings
        self._stack = AsyncExitStack()
        self._ses: Any = None

    async def open(self) -> None:
        config = aws_provider_config(
            send_timeout_seconds=self._settings.send_timeout_seconds,
            max_pool_connections=self._settings.concurrency,
        )
        self._ses = await self._stack.enter_async_context(aws_clients(self._settings, "ses", config=config))

    async def close(self) -> None:
        await self._stack.aclose()

    async def send(self, message: NotificationMessage) -> SendResult:
        address = message.recipient.email
        if not address:
            raise PermanentSendError("recipient has no email address", code="no_email")
        try:
            response = await self._ses.send_email(**email_request(message, self._settings.email_from_address))
        except Exception as exc:  # noqa: BLE001 - every botocore error is classified
            raise classify_aws_error(exc) from exc
        return SendResult(provider_message_id=response.get("MessageId"))


def email_request(message: NotificationMessage, from_address: str) -> dict[str, Any]:
    """SendEmail's arguments for a notification."""
    return {
        "Source": from_address,
        "Destination": {"ToAddresses": [message.recipient.email]},
        "Message": {
            "Subject": {"Data": message.subject or DEFAULT_SUBJECT, "Charset": "UTF-8"},
            "Body": {"Text": {"Data": message.message, "Charset": "UTF-8"}},
        },
    }
