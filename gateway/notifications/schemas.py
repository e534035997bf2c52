"""Notifications in and out of the API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from gateway.content.schemas import Category, ContentPublic, Personalisation
from gateway.recipients.schemas import NAME_PATTERN
from gateway.text import NOT_BLANK_STORABLE_PATTERN, STORABLE_PATTERN, ecma_pattern, storable_text
from shared.channels import Channel, channel_spec
from shared.sms import SmsEncoding
from shared.statuses import DeliveryStatus

MAX_MESSAGE_CHARACTERS = 10_000
MAX_SUBJECT_CHARACTERS: int = channel_spec(Channel.EMAIL).limits.subject_characters  # type: ignore[assignment]
# One line: an email header (see gateway/content/limits.py, which says so in words).
SUBJECT_PATTERN = r"^[^\x00\r\n]*$"


def _required(field: str):  # noqa: ANN202 - returns a validator
    def check(value: object) -> object:
        # The original gateway answered "missing X" for absent and empty values alike.
        if value is None or (isinstance(value, str) and value.strip() == ""):
            raise ValueError(f"missing {field}")
        return value

    return check


def _whole_number(field: str):  # noqa: ANN202 - returns a validator
    def check(value: object) -> object:
        # As JSON Schema's "integer": 3 and 3.0, not "3" or true (which pydantic's lax int takes).
        if isinstance(value, str | bool):
            raise ValueError(f"{field} must be a whole number")
        return value

    return check


def _one_line(value: str | None) -> str | None:
    if value is not None and ("\r" in value or "\n" in value):
        raise ValueError("email subject must be one line, without CR or LF")
    return value


def _plain_or_template(schema: dict[str, Any]) -> None:
    schema["examples"] = [
        {"recipient": "jane", "message": "Your order has shipped", "subject": "Order update"},
        {"recipient": "jane", "template": "order-shipped", "personalisation": {"first name": "Jane", "order ref": "A-1234"}},
    ]
    # A message (with its subject), or a template (with its version and personalisation).
    schema["oneOf"] = [
        {"required": ["message"], "properties": {"template": False, "template_version": False, "personalisation": False}},
        {"required": ["template"], "properties": {"message": False, "subject": False}},
    ]
    # Delivery "first" needs channels (their order is the order tried).
    schema["anyOf"] = [
        {"not": {"required": ["delivery"]}},
        {"properties": {"delivery": {"const": "all"}}},
        {"required": ["channels"], "properties": {"channels": {"type": "array"}}},
    ]


# send_at: how far ahead it may be, and how late it may be and still be sent (at once).
MAX_SEND_AHEAD = timedelta(days=7)
MAX_SEND_LATE = timedelta(seconds=60)
SEND_AT_FORMAT = "send_at must be an ISO 8601 date and time with a UTC offset, such as 2026-12-02T09:00:00+01:00"
SEND_AT_NEEDS_OFFSET = "send_at needs a UTC offset"
SEND_AT_IN_THE_PAST = "send_at is in the past"
SEND_AT_TOO_FAR = f"send_at is more than {MAX_SEND_AHEAD.days} days ahead; the limit is {MAX_SEND_AHEAD.days} days"
_DATE_TIME = TypeAdapter(datetime)
_STARTS_WITH_A_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]")
# RFC 3339 allows what datetime cannot hold: a leap second (23:59:60, the instant after :59) and
# the year 0000 (long past).
_LEAP_SECOND = re.compile(r"^(\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:)60((?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2}))$")


def _send_at(value: object) -> object:
    """A date and time as ISO 8601 writes it, with its offset, as the instant in UTC. Not a
    number, nor a bare date (pydantic reads both as datetimes). How far from now it may be is
    the plan's to say (``plan.release_time``): it is a rule of the moment of accepting."""
    if value is None:
        return value
    if not isinstance(value, str) or not _STARTS_WITH_A_DATE.match(value):
        raise ValueError(SEND_AT_FORMAT)
    if value.startswith("0000-"):
        raise ValueError(SEND_AT_IN_THE_PAST)
    leap = _LEAP_SECOND.match(value)
    try:
        parsed = _DATE_TIME.validate_json(json.dumps(f"{leap[1]}59{leap[2]}" if leap else value), strict=True)
    except ValidationError:
        raise ValueError(SEND_AT_FORMAT) from None
    if leap:
        parsed += timedelta(seconds=1)
    if parsed.tzinfo is None:
        raise ValueError(SEND_AT_NEEDS_OFFSET)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # the first or last hours datetime can hold, in UTC before year 1 or after 9999
        raise ValueError(SEND_AT_TOO_FAR if parsed.year > 1 else SEND_AT_IN_THE_PAST) from None


class DeliveryMode(StrEnum):
    """How a notification's channels are tried (the DB column ``notifications.delivery``)."""

    ALL = "all"  # every channel at once
    FIRST = "first"  # one at a time, in the order of ``channels``, until one is sent


FIRST_NEEDS_CHANNELS = 'delivery "first" needs channels: the channels to try, in order'


def _distinct(channels: list[Channel] | None) -> list[Channel] | None:
    if channels is not None and len(set(channels)) != len(channels):
        raise ValueError("channels lists a channel more than once")
    return channels


class NotificationCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra=_plain_or_template)

    # A name that does not match the pattern is no recipient's: refused as unknown.
    recipient: Annotated[
        str,
        BeforeValidator(_required("recipient")),
        Field(max_length=128, json_schema_extra={"pattern": ecma_pattern(NAME_PATTERN.pattern)}),
        AfterValidator(storable_text),
    ]
    # Optional, but not null: a message or a template (the model's oneOf says which goes with which).
    message: Annotated[
        str,
        BeforeValidator(_required("message")),
        Field(
            max_length=MAX_MESSAGE_CHARACTERS,
            json_schema_extra={"pattern": NOT_BLANK_STORABLE_PATTERN},
            description="The text every channel sends (or give a template).",
        ),
        AfterValidator(storable_text),
    ] = None  # type: ignore[assignment]
    subject: Annotated[
        Annotated[str, Field(max_length=MAX_SUBJECT_CHARACTERS, json_schema_extra={"pattern": SUBJECT_PATTERN})] | None,
        Field(description="Email subject of a message, one line; default 'Notification'."),
        AfterValidator(lambda value: value if value is None else storable_text(value)),
        AfterValidator(_one_line),
    ] = None
    # A template that does not exist is refused as not found, whatever its name.
    template: Annotated[
        str,
        BeforeValidator(_required("template")),
        Field(
            max_length=128,
            json_schema_extra={"pattern": ecma_pattern(NAME_PATTERN.pattern)},
            description="Send this template's content instead of a message: each channel gets its own text.",
        ),
        AfterValidator(storable_text),
    ] = None  # type: ignore[assignment]
    template_version: Annotated[
        int,
        Field(ge=1, le=2_147_483_647, description="That version of the template; default: its latest."),
        # Outermost, so that it runs first and the constraints above stay in the document.
        BeforeValidator(_whole_number("template_version")),
    ] = None  # type: ignore[assignment]
    personalisation: Personalisation = None  # type: ignore[assignment]
    channels: Annotated[
        Annotated[list[Channel], Field(min_length=1, json_schema_extra={"uniqueItems": True})] | None,
        Field(
            description="Deliver only on these of the recipient's channels; default: all it has (and, for a template, "
            "it has content for)."
        ),
        AfterValidator(_distinct),
    ] = None
    category: Annotated[
        Category,
        Field(description="What kind of notification it is, for the recipient's preferences; default: the template's, else 'general'."),
    ] = None  # type: ignore[assignment]
    send_at: Annotated[
        datetime,
        Field(
            description="Send it then, not at once: ISO 8601 with a UTC offset, up to 7 days ahead (up to 60 s in the past is sent at once)."
        ),
        BeforeValidator(_send_at),
    ] = None  # type: ignore[assignment]
    delivery: Annotated[
        DeliveryMode,
        Field(
            description='"all" (default): every channel. "first": the channels one at a time in the order of channels '
            "(required then), the next only when the one before ends failed or skipped, until one is sent; the rest are cancelled."
        ),
    ] = DeliveryMode.ALL

    @model_validator(mode="after")
    def _message_or_template(self) -> NotificationCreate:
        # By what the request gave, as the oneOf in the document says: a field given as null is given.
        given = self.model_fields_set
        if "message" in given and "template" in given:
            raise ValueError("give either message or template, not both")
        if "template" not in given:
            if "message" not in given:
                raise ValueError("missing message")
            for field in ("template_version", "personalisation"):
                if field in given:
                    raise ValueError(f"{field} needs a template")
        elif "subject" in given:
            raise ValueError("subject is for a message: a template has its own email subject")
        if self.delivery is DeliveryMode.FIRST and self.channels is None:
            raise ValueError(FIRST_NEEDS_CHANNELS)
        return self


# A batch: at most this many items per request (an item is what POST /notifications takes).
MAX_BATCH_ITEMS = 1000
MAX_REFERENCE_CHARACTERS = 128


class NotificationBatchItem(NotificationCreate):
    """One item of POST /notifications/batch: what POST /notifications takes, and the client's reference."""

    reference: Annotated[
        Annotated[str, Field(min_length=1, max_length=MAX_REFERENCE_CHARACTERS, json_schema_extra={"pattern": STORABLE_PATTERN})] | None,
        Field(description="The client's own identifier for the item, returned in its status and callbacks."),
        AfterValidator(lambda value: value if value is None else storable_text(value)),
    ] = None


def _batch_size(items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError("a batch needs at least one notification")
    if len(items) > MAX_BATCH_ITEMS:
        raise ValueError(f"a batch takes at most {MAX_BATCH_ITEMS:,} notifications; this one has {len(items):,}")
    return items


class NotificationBatch(BaseModel):
    # Items are validated one by one (each gets its own result), so the list takes anything here;
    # the OpenAPI document still says what an item is (gateway/app.py).
    notifications: Annotated[
        list[Any],
        Field(
            json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH_ITEMS},
            description=f"Up to {MAX_BATCH_ITEMS:,} items, each what POST /notifications takes, and an optional reference.",
        ),
        AfterValidator(_batch_size),
    ]


class BatchItemResult(BaseModel):
    """What became of one item: 201 with its id, or the status and message POST /notifications would answer."""

    index: int
    status: int
    id: UUID | None = None
    reference: str | None = None
    message: str | None = None
    field: str | None = None


class BatchResults(BaseModel):
    results: list[BatchItemResult]


class TemplateReference(BaseModel):
    name: str
    version: int


class NotificationAccepted(BaseModel):
    id: UUID
    recipient: str
    message: str | None = None
    subject: str | None = None
    template: TemplateReference | None = None
    category: str
    channels: list[Channel] = Field(description='The channels targeted; for delivery "first", in the order they are tried.')
    delivery: DeliveryMode = DeliveryMode.ALL
    reference: str | None = None
    job_id: UUID | None = Field(default=None, description="The CSV job it is a row of (POST /jobs).")
    sms_fragments: int | None = Field(default=None, description="When SMS is targeted: how many SMS messages it is sent as.")
    sms_encoding: SmsEncoding | None = Field(default=None, description="When SMS is targeted: GSM-7, or UCS-2 for other characters.")
    send_at: datetime | None = Field(default=None, description="The time the request asked for (in UTC).")
    release_at: datetime | None = Field(
        default=None, description="While held (send_at, or the recipient's quiet hours): when its deliveries are released."
    )
    created_at: datetime


class ReceiptPublic(BaseModel):
    """What the provider reported about a delivery (see shared/receipts.py)."""

    event: str = Field(description="SES: Delivery, Bounce, Complaint, Reject, Rendering Failure; SMS: SUCCESS or FAILURE.")
    type: str | None = Field(default=None, description="A bounce's bounceType, a complaint's complaintFeedbackType.")
    subtype: str | None = Field(default=None, description="A bounce's bounceSubType.")
    at: datetime = Field(description="When the provider says it happened.")
    detail: dict[str, Any] = Field(description="The provider's details: the SMTP response, the diagnostic code, the carrier's answer ...")


class DeliveryPublic(BaseModel):
    status: DeliveryStatus
    attempts: int
    last_error: str | None = None
    provider: str | None = Field(default=None, description='The provider of the last attempt ("sns", "twilio", "ses", "slack").')
    provider_message_id: str | None = None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    release_at: datetime | None = Field(default=None, description="While scheduled: when it is released.")
    delivered_at: datetime | None = None
    receipts: list[ReceiptPublic] = Field(default_factory=list, description="In the order they happened.")


class NotificationPublic(NotificationAccepted):
    content: ContentPublic | None = Field(default=None, description="A template notification's: what each channel was sent.")
    client: str
    published: bool = Field(description="Whether SNS has confirmed the message (false while it waits in the outbox).")
    delivered_by: Channel | None = Field(
        default=None,
        description='For delivery "first": the channel that was sent (or delivered), once one is; null until then and if none is.',
    )
    deliveries: dict[Channel, DeliveryPublic]
