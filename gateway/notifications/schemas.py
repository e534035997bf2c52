"""Notifications in and out of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from gateway.recipients.schemas import NAME_PATTERN
from gateway.text import NOT_BLANK_STORABLE_PATTERN, STORABLE_PATTERN, ecma_pattern, storable_text
from shared.channels import Channel
from shared.statuses import DeliveryStatus

MAX_MESSAGE_CHARACTERS = 10_000
MAX_SUBJECT_CHARACTERS = 200


def _required(field: str):  # noqa: ANN202 - returns a validator
    def check(value: object) -> object:
        # The original gateway answered "missing X" for absent and empty values alike.
        if value is None or (isinstance(value, str) and value.strip() == ""):
            raise ValueError(f"missing {field}")
        return value

    return check


def _distinct(channels: list[Channel] | None) -> list[Channel] | None:
    if channels is not None and len(set(channels)) != len(channels):
        raise ValueError("channels lists a channel more than once")
    return channels


class NotificationCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"recipient": "jane", "message": "Your order has shipped", "subject": "Order update"}]}
    )

    # A name that does not match the pattern is no recipient's: refused as unknown.
    recipient: Annotated[
        str,
        BeforeValidator(_required("recipient")),
        Field(max_length=128, json_schema_extra={"pattern": ecma_pattern(NAME_PATTERN.pattern)}),
        AfterValidator(storable_text),
    ]
    message: Annotated[
        str,
        BeforeValidator(_required("message")),
        Field(max_length=MAX_MESSAGE_CHARACTERS, json_schema_extra={"pattern": NOT_BLANK_STORABLE_PATTERN}),
        AfterValidator(storable_text),
    ]
    subject: Annotated[
        Annotated[str, Field(max_length=MAX_SUBJECT_CHARACTERS, json_schema_extra={"pattern": STORABLE_PATTERN})] | None,
        Field(description="Email subject; default 'Notification'."),
        AfterValidator(lambda value: value if value is None else storable_text(value)),
    ] = None
    channels: Annotated[
        Annotated[list[Channel], Field(min_length=1, json_schema_extra={"uniqueItems": True})] | None,
        Field(description="Deliver only on these of the recipient's channels; default: all it has."),
        AfterValidator(_distinct),
    ] = None


class NotificationAccepted(BaseModel):
    id: UUID
    recipient: str
    message: str
    subject: str | None = None
    channels: list[Channel]
    created_at: datetime


class DeliveryPublic(BaseModel):
    status: DeliveryStatus
    attempts: int
    last_error: str | None = None
    provider_message_id: str | None = None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None


class NotificationPublic(NotificationAccepted):
    client: str
    published: bool = Field(description="Whether SNS has confirmed the message (false while it waits in the outbox).")
    deliveries: dict[Channel, DeliveryPublic]
