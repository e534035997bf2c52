"""The message the gateway publishes to SNS and the senders consume from SQS.

It carries a snapshot of the recipient's contact data, so a sender never looks the recipient up:
what was accepted is what is delivered, even if the recipient changes or is deleted meanwhile.

It carries what each channel sends, too. A plain notification has one ``message`` (and an email
``subject``) for every channel; a notification sent from a template has ``content``: the text
rendered for each channel it targets when it was accepted, so a sender never looks a template up
and a template edited later never changes a notification already accepted. A sender reads its
channel's content through ``sms_content()``, ``email_content()`` or ``slack_content()``, which
answer alike for both kinds (and for messages published before ``content`` existed).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, model_validator

from shared.channels import Channel
from shared.topology import CHANNELS_ATTRIBUTE, LANE_ATTRIBUTE, NOTIFICATION_ID_ATTRIBUTE, Lane

MESSAGE_VERSION = 1
DEFAULT_EMAIL_SUBJECT = "Notification"
# SNS takes messages of up to 256 KiB; a template notification's rendered content may take all of
# it but what the rest of the message (the recipient snapshot, ids, channels) and its attributes
# need, a few hundred bytes.
MAX_SNS_MESSAGE_BYTES = 262_144
MAX_CONTENT_BYTES = 256_000


class RecipientSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    phone_number: str | None = None
    email: str | None = None
    slack_id: str | None = None


class SmsContent(BaseModel):
    model_config = ConfigDict(frozen=True)

    body: str


class EmailContent(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject: str
    body: str


class SlackContent(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str


class ChannelContent(BaseModel):
    """What each channel sends, rendered (one field per channel that has content)."""

    model_config = ConfigDict(frozen=True)

    sms: SmsContent | None = None
    email: EmailContent | None = None
    slack: SlackContent | None = None

    def has(self, channel: Channel | str) -> bool:
        return getattr(self, Channel(channel).value) is not None


class NotificationMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: int = MESSAGE_VERSION
    notification_id: uuid.UUID
    recipient: RecipientSnapshot
    # A plain notification's text and email subject (``content`` is None) ...
    message: str | None = None
    subject: str | None = None
    # ... or a template's rendering, per channel.
    content: ChannelContent | None = None
    channels: list[Channel]
    client: str
    created_at: datetime
    # Which of its channels' queues it goes to; published as the ``lane`` attribute.
    lane: Lane = Lane.STANDARD

    @model_validator(mode="after")
    def _content_for_every_channel(self) -> NotificationMessage:
        if self.content is None:
            if self.message is None:
                raise ValueError("the message has neither message nor content")
        else:
            lacking = [channel.value for channel in self.channels if not self.content.has(channel)]
            if lacking:
                raise ValueError(f"the message has no content for {', '.join(lacking)}")
        return self

    def sms_content(self) -> SmsContent:
        if self.content is not None and self.content.sms is not None:
            return self.content.sms
        return SmsContent(body=self._plain())

    def email_content(self) -> EmailContent:
        if self.content is not None and self.content.email is not None:
            return self.content.email
        return EmailContent(subject=self.subject or DEFAULT_EMAIL_SUBJECT, body=self._plain())

    def slack_content(self) -> SlackContent:
        if self.content is not None and self.content.slack is not None:
            return self.content.slack
        return SlackContent(text=self._plain())

    def _plain(self) -> str:
        if self.message is None:
            raise ValueError("the message has no content for this channel")
        return self.message

    def sns_message_attributes(self) -> dict[str, dict[str, str]]:
        """Attributes the subscriptions' filter policies match on (``channels``, ``lane``)."""
        channels = "[" + ",".join(f'"{channel.value}"' for channel in self.channels) + "]"
        return {
            CHANNELS_ATTRIBUTE: {"DataType": "String.Array", "StringValue": channels},
            LANE_ATTRIBUTE: {"DataType": "String", "StringValue": self.lane.value},
            NOTIFICATION_ID_ATTRIBUTE: {"DataType": "String", "StringValue": str(self.notification_id)},
        }

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def from_json(cls, body: str | bytes) -> NotificationMessage:
        return cls.model_validate_json(body)
