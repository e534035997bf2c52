"""A notification as stored: what the accept returns, the outbox publishes and the status reads.

One object gives the three things made from a ``notifications`` row: the SNS message (with the
recipient snapshot, not today's recipient, and a template notification's rendered content, not
today's template), the 201 body and the status reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic_core import to_json

from gateway.content.schemas import ContentPublic
from gateway.notifications.schemas import DeliveryMode, NotificationPublic, TemplateReference
from shared.channels import CHANNELS, Channel
from shared.messages import ChannelContent, NotificationMessage, RecipientSnapshot
from shared.sms import SmsLength, sms_length
from shared.statuses import DeliveryStatus
from shared.topology import Lane


@dataclass(frozen=True, slots=True)
class StoredNotification:
    id: UUID
    recipient: RecipientSnapshot
    message: str | None  # a plain notification's ...
    subject: str | None
    content: ChannelContent | None  # ... or a template's, rendered per channel
    template: str | None
    template_version: int | None
    category: str
    channels: list[str]  # the channels targeted when it was accepted
    client: str
    created_at: datetime
    reference: str | None = None  # the client's own identifier (a batch item's)
    bulk: bool = False  # sent from a batch or a job: its message takes the bulk lane
    job_id: UUID | None = None  # the CSV job it is a row of
    send_at: datetime | None = None  # the time the client asked for
    release_at: datetime | None = None  # when it was (to be) released, when held
    delivery: DeliveryMode = DeliveryMode.ALL  # every channel, or the first that works (in ``channels``' order)
    # The SMS text's length when SMS is targeted, if already measured (else measured when asked).
    sms: SmsLength | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredNotification:
        """From a ``notifications`` row (columns by name, as asyncpg returns them)."""
        contacts = {spec.contact_field: row[spec.contact_field] for spec in CHANNELS}
        content = row["content"]
        return cls(
            id=row["id"],
            recipient=RecipientSnapshot(name=row["recipient"], **contacts),
            message=row["message"],
            subject=row["subject"],
            content=ChannelContent.model_validate_json(content) if content is not None else None,
            template=row["template"],
            template_version=row["template_version"],
            category=row["category"],
            channels=list(row["channels"]),
            client=row["client"],
            created_at=row["created_at"],
            reference=row["reference"],
            bulk=row["bulk"],
            job_id=row["job_id"],
            send_at=row["send_at"],
            release_at=row["release_at"],
            delivery=DeliveryMode(row["delivery"]),
        )

    def sms_length(self) -> SmsLength | None:
        """The SMS text's encoding, size and fragments, when SMS is targeted."""
        if Channel.SMS not in self.channels:
            return None
        if self.sms is not None:
            return self.sms
        if self.content is not None:
            return sms_length(self.content.sms.body) if self.content.sms is not None else None
        return sms_length(self.message or "")

    def sns_message(self, channels: Sequence[str] | None = None) -> NotificationMessage:
        """The SNS message, addressed to ``channels`` (default: all the targeted ones)."""
        return NotificationMessage(
            notification_id=self.id,
            recipient=self.recipient,
            message=self.message,
            subject=self.subject,
            content=self.content,
            channels=list(channels if channels is not None else self.channels),
            client=self.client,
            created_at=self.created_at,
            lane=Lane.BULK if self.bulk else Lane.STANDARD,
        )

    def accepted_json(self) -> bytes:
        """The 201's body: the JSON of ``NotificationAccepted`` (None left out), built directly,
        the bytes ``model_dump_json(exclude_none=True)`` gives, without validating into a model
        first what the database has just returned (this is every 201's body)."""
        body: dict[str, Any] = {"id": self.id, "recipient": self.recipient.name}
        if self.message is not None:
            body["message"] = self.message
        if self.subject is not None:
            body["subject"] = self.subject
        if self.template is not None:
            body["template"] = {"name": self.template, "version": self.template_version}
        body["category"] = self.category
        body["channels"] = self.channels
        body["delivery"] = self.delivery
        if self.reference is not None:
            body["reference"] = self.reference
        if self.job_id is not None:
            body["job_id"] = self.job_id
        sms = self.sms_length()
        if sms is not None:
            body["sms_fragments"] = sms.fragments
            body["sms_encoding"] = sms.encoding
        if self.send_at is not None:
            body["send_at"] = self.send_at
        if self.release_at is not None:
            body["release_at"] = self.release_at
        body["created_at"] = self.created_at
        return to_json(body)

    def public(self, *, published: bool, deliveries: Mapping[str, Any]) -> NotificationPublic:
        """The reply of GET /notifications/{id}."""
        sms = self.sms_length()
        return NotificationPublic(
            id=self.id,
            recipient=self.recipient.name,
            message=self.message,
            subject=self.subject,
            template=TemplateReference(name=self.template, version=self.template_version) if self.template is not None else None,
            category=self.category,
            channels=self.channels,
            delivery=self.delivery,
            reference=self.reference,
            job_id=self.job_id,
            sms_fragments=sms.fragments if sms is not None else None,
            sms_encoding=sms.encoding if sms is not None else None,
            send_at=self.send_at,
            release_at=self.release_at,
            created_at=self.created_at,
            content=ContentPublic.of(self.content) if self.content is not None else None,
            client=self.client,
            published=published,
            delivered_by=self.delivered_by(deliveries),
            deliveries=deliveries,
        )

    def delivered_by(self, deliveries: Mapping[str, Any]) -> str | None:
        """For delivery "first": the channel that reached the recipient (``sent`` or ``delivered``;
        at most one ever is), else None."""
        if self.delivery is not DeliveryMode.FIRST:
            return None
        reached = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
        return next((channel for channel, delivery in deliveries.items() if delivery["status"] in reached), None)
