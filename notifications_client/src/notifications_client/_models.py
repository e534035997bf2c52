"""The gateway's requests and answers as pydantic models.

They mirror the gateway's schemas (``gateway/*/schemas.py``) without importing them: this package
is installed on its own. The gateway is the authority on what is valid (its 400 says why, in
words, as a ``ValidationError``), so requests are checked here only for their types. Answers keep
fields this version does not know yet (``extra="allow"``), so a newer gateway does not break an
older client.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"
    SLACK = "slack"


class DeliveryStatus(StrEnum):
    SCHEDULED = "scheduled"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    WAITING = "waiting"  # delivery "first": a later channel, tried only if the ones before it fail


class DeliveryMode(StrEnum):
    ALL = "all"  # every channel at once (the gateway's default)
    FIRST = "first"  # one channel at a time, in the order of ``channels``, until one is sent


class CallbackEventType(StrEnum):
    SENT = "delivery.sent"
    DELIVERED = "delivery.delivered"
    FAILED = "delivery.failed"
    SKIPPED = "delivery.skipped"
    CANCELLED = "delivery.cancelled"


# A status a newer gateway adds is kept as its text rather than refused.
Status = Annotated[DeliveryStatus | str, Field(union_mode="left_to_right")]


class Request(BaseModel):
    """A request body: sent without the fields left unset."""

    model_config = ConfigDict(extra="forbid")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


Scalar = str | int | float | bool
Personalisation = dict[str, Scalar | list[Scalar] | None]


# -- recipients ---------------------------------------------------------------------------


class RecipientContacts(Request):
    """PUT /recipients/{name}: at least one contact method."""

    phone_number: str | None = None
    email: str | None = None
    slack_id: str | None = None


class Recipient(Answer):
    name: str
    phone_number: str | None = None
    email: str | None = None
    slack_id: str | None = None


class Page(Answer):
    """A listing's page: pass ``next_cursor`` back as ``cursor`` (absent on the last page)."""

    next_cursor: str | None = None


class RecipientPage(Page):
    items: list[Recipient]


class ChannelSwitches(Request):
    """Per channel: False turns it off; None (absent) leaves it on."""

    sms: bool | None = None
    email: bool | None = None
    slack: bool | None = None


class QuietHours(Request):
    """A daily window of the recipient's local time (HH:MM, an IANA zone) in which notifications
    are held until it ends."""

    start: str
    end: str
    timezone: str


class Preferences(Request):
    """PUT /recipients/{name}/preferences: the channels turned off, globally and per category,
    and the recipient's quiet hours."""

    channels: ChannelSwitches | None = None
    categories: dict[str, ChannelSwitches] | None = None
    quiet_hours: QuietHours | None = None


class ChannelSwitchesState(Answer):
    sms: bool
    email: bool
    slack: bool


class PreferencesState(Answer):
    """GET /recipients/{name}/preferences: every switch, on unless turned off."""

    channels: ChannelSwitchesState
    categories: dict[str, ChannelSwitchesState]
    quiet_hours: QuietHours | None = None


# -- templates ----------------------------------------------------------------------------


class EmailTemplate(Request):
    subject: str
    body: str


class TemplateContent(Request):
    """PUT /templates/{name}: the text for each channel it can be sent on (at least one)."""

    sms: str | None = None
    email: EmailTemplate | None = None
    slack: str | None = None
    category: str | None = None


class Template(Answer):
    name: str
    version: int
    sms: str | None = None
    email: EmailTemplate | None = None
    slack: str | None = None
    category: str | None = None
    placeholders: list[str]
    created_at: datetime
    created: bool | None = Field(default=None, description="From put_template: whether this PUT made the template's first version (201).")


class TemplatePage(Page):
    items: list[Template]


class SmsRendered(Answer):
    body: str
    fragments: int
    encoding: str


class EmailRendered(Answer):
    subject: str
    body: str


class SlackRendered(Answer):
    text: str


class Rendered(Answer):
    """What each channel sends (the channels with content only)."""

    sms: SmsRendered | None = None
    email: EmailRendered | None = None
    slack: SlackRendered | None = None


# -- notifications ------------------------------------------------------------------------


class NotificationRequest(Request):
    """POST /notifications: a message, or a template with its personalisation."""

    recipient: str
    message: str | None = None
    subject: str | None = None
    template: str | None = None
    template_version: int | None = None
    personalisation: Personalisation | None = None
    channels: list[Channel] | None = None
    category: str | None = None
    send_at: datetime | None = None
    delivery: DeliveryMode | None = None  # None: the gateway's default, "all"; "first" needs channels


class NotificationBatchItem(NotificationRequest):
    """An item of POST /notifications/batch: a notification and the client's own reference."""

    reference: str | None = None


class BatchItemResult(Answer):
    """What became of one item: 201 with its id, or the status and message a single send would get."""

    index: int
    status: int
    id: UUID | None = None
    reference: str | None = None
    message: str | None = None
    field: str | None = None


class BatchResults(Answer):
    results: list[BatchItemResult]
    replayed: bool = Field(default=False, description="The gateway answered a repeat of the Idempotency-Key: nothing new was sent.")


class TemplateReference(Answer):
    name: str
    version: int


class NotificationAccepted(Answer):
    id: UUID
    recipient: str
    message: str | None = None
    subject: str | None = None
    template: TemplateReference | None = None
    category: str
    channels: list[Channel]
    delivery: DeliveryMode | str = Field(default=DeliveryMode.ALL, union_mode="left_to_right")
    sms_fragments: int | None = None
    sms_encoding: str | None = None
    send_at: datetime | None = None
    release_at: datetime | None = Field(default=None, description="While held (send_at, or quiet hours): when it is released.")
    created_at: datetime
    replayed: bool = Field(default=False, description="The gateway answered a repeat of the Idempotency-Key: nothing new was sent.")


class Receipt(Answer):
    """What the provider reported about a delivery."""

    event: str
    type: str | None = None
    subtype: str | None = None
    at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class Delivery(Answer):
    status: Status
    attempts: int
    last_error: str | None = None
    provider_message_id: str | None = None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None
    release_at: datetime | None = None
    delivered_at: datetime | None = None
    provider: str | None = Field(default=None, description="Which of the channel's providers made the last attempt (sns, twilio, ses, slack).")
    receipts: list[Receipt] = Field(default_factory=list)


class Notification(NotificationAccepted):
    content: Rendered | None = None
    client: str
    published: bool
    reference: str | None = Field(default=None, description="A batch item's own reference, as the client gave it.")
    delivered_by: Channel | None = Field(default=None, description='Delivery "first": the channel that was sent, once one is.')
    deliveries: dict[Channel, Delivery]


# -- suppressions --------------------------------------------------------------------------


class Suppression(Answer):
    """An address not sent to any more: a permanent bounce, a complaint or an SMS opt-out."""

    channel: Channel
    address: str
    reason: str
    notification_id: UUID | None = None
    created_at: datetime


class SuppressionPage(Page):
    items: list[Suppression]


# -- CSV jobs ---------------------------------------------------------------------------


class JobRowError(Answer):
    """A row's error, numbered as a spreadsheet numbers rows (the header is row 1)."""

    row: int
    column: str | None = None
    message: str


class JobDryRun(Answer):
    """What a job would send (POST /jobs?dry_run=true): nothing is stored."""

    rows: int
    channels: dict[Channel, int]
    sms_fragments: int
    errors: list[JobRowError]


class Job(Answer):
    """A CSV job: ``status`` scheduled, in_progress, finished or cancelled; ``counts`` (from
    ``job``, ``jobs``, ``cancel_job``): deliveries per channel and status."""

    id: UUID
    name: str
    template: TemplateReference
    rows: int
    status: str
    created_at: datetime
    send_at: datetime | None = None
    cancelled_at: datetime | None = None
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)


class JobPage(Page):
    items: list[Job]


class JobNotificationPage(Page):
    items: list[Notification]


# -- callbacks ----------------------------------------------------------------------------


class CallbackSettings(Request):
    """PUT /callbacks: where this client's delivery events go, and which (default: all)."""

    url: str
    events: list[CallbackEventType] | None = None


class CallbackCreated(Answer):
    """PUT /callbacks and POST /callbacks/rotate-secret: the only answers with the secret."""

    url: str
    events: list[CallbackEventType]
    secret: str


class CallbackFailure(Answer):
    at: datetime
    event_id: UUID
    type: CallbackEventType
    error: str
    will_retry: bool


class Callback(Answer):
    """GET /callbacks: the settings without the secret, and how delivery goes."""

    url: str
    events: list[CallbackEventType]
    pending: int
    last_success_at: datetime | None = None
    last_failure: CallbackFailure | None = None


class CallbackEventData(Answer):
    notification_id: UUID
    channel: Channel
    status: Status
    attempts: int
    last_error: str | None = None
    provider_message_id: str | None = None
    created_at: datetime
    sent_at: datetime | None = None


class CallbackEvent(Answer):
    """The body of a status callback, once its signature is verified."""

    type: CallbackEventType
    timestamp: datetime
    data: CallbackEventData


# -- operations ---------------------------------------------------------------------------


class Health(Answer):
    """The gateway's ops port ``/readyz``: ``ready`` when every dependency check is ``ok``."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)
    draining: bool = False

    @property
    def ready(self) -> bool:
        return self.status == "ready"
