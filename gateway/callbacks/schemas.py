"""Callbacks in and out of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.text import BLANK_CLASS, storable_text
from shared.callback_events import ALL_EVENT_TYPES, CallbackEventType
from shared.callback_targets import MAX_URL_LENGTH

# What a URL looks like before the gateway checks its host (gateway/callbacks/service.py):
# http(s)://, a host (no credentials), then a path and a query; no fragment, and none of what
# shared/callback_targets.py refuses as spaces or control characters (C0, DEL, C1, str.isspace).
_NOT_IN_URL = f"\\x00-\\x1f\\x7f-\\x9f{BLANK_CLASS}"
URL_PATTERN = f"^https?://[^{_NOT_IN_URL}@#/?\\\\]+(?:[/?][^{_NOT_IN_URL}#]*)?$"
URL_DESCRIPTION = (
    "Where the events are POSTed: an https:// URL (http:// only for localhost and 127.0.0.1 when the gateway runs "
    "with CALLBACKS_ALLOW_LOCALHOST=true). Its host must not be, or resolve to, a loopback, private, link-local, "
    "shared (CGNAT), multicast, reserved or cloud metadata address unless the operator's CALLBACKS_ALLOWED_NETWORKS "
    "lists it."
)


def _distinct(events: list[CallbackEventType] | None) -> list[CallbackEventType] | None:
    if events is not None and len(set(events)) != len(events):
        raise ValueError("events lists an event more than once")
    return events


class CallbackBase(BaseModel):
    url: Annotated[
        str, Field(max_length=MAX_URL_LENGTH, description=URL_DESCRIPTION, json_schema_extra={"pattern": URL_PATTERN}), AfterValidator(storable_text)
    ]


class CallbackUpdate(CallbackBase):
    """The body of PUT /callbacks."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"url": "https://example.com/notifications/events", "events": ["delivery.delivered", "delivery.failed"]}]}
    )

    events: Annotated[
        Annotated[list[CallbackEventType], Field(min_length=1, json_schema_extra={"uniqueItems": True})] | None,
        Field(description="The events to send; default: all of them."),
        AfterValidator(_distinct),
    ] = None

    @property
    def event_names(self) -> list[str]:
        return [event.value for event in self.events or ALL_EVENT_TYPES]


class CallbackCreated(CallbackBase):
    """The answer of PUT /callbacks and POST /callbacks/rotate-secret: the only ones with the secret."""

    events: list[CallbackEventType]
    secret: str = Field(description="The Standard Webhooks signing secret (whsec_...): verify every callback with it.")


class CallbackFailure(BaseModel):
    at: datetime
    event_id: UUID
    type: CallbackEventType
    error: str
    will_retry: bool = Field(description="False when the event was given up on (a 4xx, a refused address, or retried for too long).")


class CallbackPublic(CallbackBase):
    """The answer of GET /callbacks: the settings without the secret, and how delivery goes."""

    events: list[CallbackEventType]
    pending: int = Field(description="Events not yet delivered (waiting, being sent or to be retried).")
    last_success_at: datetime | None = None
    last_failure: CallbackFailure | None = None
