"""Status callback events: their names, and the request body a receiver gets (no SQLAlchemy
here: the callback sender imports it).

An event is written for a delivery whose status changes to one of ``EVENT_STATUSES`` (the
triggers of migration 0007); its type is ``delivery.<status>``. The body is
``{"type", "timestamp", "data"}``: ``timestamp`` is when the status changed, ``data`` the
delivery as it was then (``callback_event_data`` in the database builds it; ``DATA_FIELDS`` is
the order a receiver sees its fields in).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class CallbackEventType(StrEnum):
    SENT = "delivery.sent"
    DELIVERED = "delivery.delivered"
    FAILED = "delivery.failed"
    SKIPPED = "delivery.skipped"
    CANCELLED = "delivery.cancelled"


ALL_EVENT_TYPES = tuple(CallbackEventType)
# The delivery statuses that have an event (the triggers' list).
EVENT_STATUSES = tuple(event.value.removeprefix("delivery.") for event in CallbackEventType)

# In the order the issue lists them; the optional ones are present only when set.
DATA_FIELDS = (
    "notification_id",
    "channel",
    "status",
    "attempts",
    "last_error",
    "provider_message_id",
    "provider",
    "reference",
    "job_id",
    "template",
    "created_at",
    "sent_at",
    "delivered_at",
)


def event_body(*, type_: str, occurred_at: datetime, data: dict[str, Any]) -> str:
    """The JSON body of an event's request: the same text on every attempt."""
    ordered = {name: data[name] for name in DATA_FIELDS if name in data}
    ordered.update((name, value) for name, value in data.items() if name not in ordered)
    body = {"type": type_, "timestamp": _timestamp(occurred_at), "data": ordered}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _timestamp(value: datetime) -> str:
    # As callback_timestamp() writes the data's timestamps: UTC, microseconds, "Z".
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
