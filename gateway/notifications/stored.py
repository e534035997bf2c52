"""A notification as stored: what the accept returns, the outbox publishes and the status reads.

One object gives the three things made from a ``notifications`` row: the SNS message (with the
recipient snapshot, not today's recipient), the 201 body and the status reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic_core import to_json

from gateway.notifications.schemas import NotificationPublic
from shared.channels import CHANNELS
from shared.messages import NotificationMessage, RecipientSnapshot


@dataclass(frozen=True, slots=True)
class StoredNotification:
    id: UUID
    recipient: RecipientSnapshot
    message: str
    subject: str | None
    channels: list[str]  # the channels targeted when it was accepted
    client: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StoredNotification:
        """From a ``notifications`` row (columns by name, as asyncpg returns them)."""
        contacts = {spec.contact_field: row[spec.contact_field] for spec in CHANNELS}
        return cls(
            id=row["id"],
            recipient=RecipientSnapshot(name=row["recipient"], **contacts),
            message=row["message"],
            subject=row["subject"],
            channels=list(row["channels"]),
            client=row["client"],
            created_at=row["created_at"],
        )

    def sns_message(self, channels: Sequence[str] | None = None) -> NotificationMessage:
        """The SNS message, addressed to ``channels`` (default: all the targeted ones)."""
        return NotificationMessage(
            notification_id=self.id,
            recipient=self.recipient,
            message=self.message,
            subject=self.subject,
            channels=list(channels if channels is not None else self.channels),
            client=self.client,
            created_at=self.created_at,
        )

    def accepted_json(self) -> bytes:
        """The 201's body: the JSON of ``NotificationAccepted`` (None left out), built directly,
        the bytes ``model_dump_json(exclude_none=True)`` gives, without validating into a model
        first what the database has just returned (this is every 201's body)."""
        body: dict[str, Any] = {"id": self.id, "recipient": self.recipient.name, "message": self.message}
        if self.subject is not None:
            body["subject"] = self.subject
        body["channels"] = self.channels
        body["created_at"] = self.created_at
        return to_json(body)

    def public(self, *, published: bool, deliveries: Mapping[str, Any]) -> NotificationPublic:
        """The reply of GET /notifications/{id}."""
        return NotificationPublic(
            id=self.id,
            recipient=self.recipient.name,
            message=self.message,
            subject=self.subject,
            channels=self.channels,
            created_at=self.created_at,
            client=self.client,
            published=published,
            deliveries=deliveries,
        )
