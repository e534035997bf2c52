"""The message the gateway publishes to SNS and the senders consume from SQS.

It carries a snapshot of the recipient's contact data, so a sender never looks the recipient up:
what was accepted is what is delivered, even if the recipient changes or is deleted meanwhile.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from shared.channels import Channel
from shared.topology import CHANNELS_ATTRIBUTE, NOTIFICATION_ID_ATTRIBUTE

MESSAGE_VERSION = 1


class RecipientSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    phone_number: str | None = None
    email: str | None = None
    slack_id: str | None = None


class NotificationMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = MESSAGE_VERSION
    notification_id: uuid.UUID
    recipient: RecipientSnapshot
    message: str
    subject: str | None = None
    channels: list[Channel]
    client: str
    created_at: datetime

    def sns_message_attributes(self) -> dict[str, dict[str, str]]:
        """Attributes the subscriptions' filter policies match on (``channels``)."""
        channels = "[" + ",".join(f'"{channel.value}"' for channel in self.channels) + "]"
        return {
            CHANNELS_ATTRIBUTE: {"DataType": "String.Array", "StringValue": channels},
            NOTIFICATION_ID_ATTRIBUTE: {"DataType": "String", "StringValue": str(self.notification_id)},
        }

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, body: str | bytes) -> NotificationMessage:
        return cls.model_validate_json(body)
