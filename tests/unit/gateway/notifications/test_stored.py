"""gateway/notifications/stored.py: one stored notification, three shapes (SNS message, 201, status)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from gateway.notifications.schemas import NotificationAccepted
from gateway.notifications.service import uuid7
from gateway.notifications.stored import StoredNotification

CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def row(**overrides: object) -> dict[str, object]:
    return {
        "id": uuid7(), "recipient": "José", "message": 'a "quoted" \\ line\nand 🎉', "subject": None,
        "channels": ["sms", "email"], "created_at": CREATED, "client": "acme",
        "phone_number": "+14155552671", "email": "jose@example.com", "slack_id": None, **overrides,
    }


class TestAcceptedJson:
    @pytest.mark.parametrize("subject", [None, "Order update"])
    @pytest.mark.parametrize("created_at", [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), CREATED])
    def test_same_bytes_as_the_model(self, subject: str | None, created_at: datetime) -> None:
        stored_row = row(subject=subject, created_at=created_at)
        expected = NotificationAccepted(**stored_row).model_dump_json(exclude_none=True).encode()
        assert StoredNotification.from_row(stored_row).accepted_json() == expected


class TestSnsMessage:
    def test_the_snapshot_and_by_default_every_targeted_channel(self) -> None:
        stored = StoredNotification.from_row(row())
        message = stored.sns_message()
        assert (message.notification_id, message.recipient.name, message.recipient.phone_number) == (stored.id, "José", "+14155552671")
        assert json.loads(message.sns_message_attributes()["channels"]["StringValue"]) == ["sms", "email"]

    def test_a_publication_may_address_fewer_channels(self) -> None:
        message = StoredNotification.from_row(row()).sns_message(["email"])
        assert json.loads(message.sns_message_attributes()["channels"]["StringValue"]) == ["email"]


class TestPublic:
    def test_the_status_reply(self) -> None:
        stored = StoredNotification.from_row(row(subject="S"))
        delivery = {"status": "pending", "attempts": 0, "created_at": CREATED.isoformat(), "updated_at": CREATED.isoformat()}
        public = stored.public(published=False, deliveries={"sms": delivery})
        assert (public.id, public.subject, public.client, public.published) == (stored.id, "S", "acme", False)
        assert public.deliveries["sms"].status == "pending"
