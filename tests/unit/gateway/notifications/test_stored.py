"""gateway/notifications/stored.py: one stored notification, three shapes (SNS message, 201, status)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.notifications.schemas import NotificationAccepted
from gateway.notifications.service import uuid7
from gateway.notifications.stored import StoredNotification
from shared.messages import NotificationMessage

CREATED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
CONTENT = {"sms": {"body": "Hi José 🎉"}, "email": {"subject": "For José", "body": "Dear José"}}


def row(**overrides: object) -> dict[str, object]:
    return {
        "id": uuid7(), "recipient": "José", "message": 'a "quoted" \\ line\nand 🎉', "subject": None, "content": None,
        "template": None, "template_version": None, "category": "general",
        "channels": ["sms", "email"], "created_at": CREATED, "client": "acme",
        "phone_number": "+14155552671", "email": "jose@example.com", "slack_id": None, "send_at": None, "release_at": None,
        "reference": None, "bulk": False, "delivery": "all", "job_id": None, **overrides,
    }


def template_row(**overrides: object) -> dict[str, object]:
    return row(message=None, content=json.dumps(CONTENT), template="welcome", template_version=2, category="onboarding", **overrides)


def accepted_model(stored_row: dict[str, Any]) -> bytes:
    stored = StoredNotification.from_row(stored_row)
    sms = stored.sms_length()
    fields = {**stored_row, "sms_fragments": sms and sms.fragments, "sms_encoding": sms and sms.encoding}
    if stored_row["template"] is not None:
        fields["template"] = {"name": stored_row["template"], "version": stored_row["template_version"]}
    return NotificationAccepted(**fields).model_dump_json(exclude_none=True).encode()


class TestAcceptedJson:
    @pytest.mark.parametrize("subject", [None, "Order update"])
    @pytest.mark.parametrize("created_at", [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), CREATED])
    @pytest.mark.parametrize("channels", [["sms", "email"], ["email"]])
    def test_same_bytes_as_the_model(self, subject: str | None, created_at: datetime, channels: list[str]) -> None:
        stored_row = row(subject=subject, created_at=created_at, channels=channels)
        assert StoredNotification.from_row(stored_row).accepted_json() == accepted_model(stored_row)

    def test_same_bytes_as_the_model_when_scheduled(self) -> None:
        stored_row = row(send_at=datetime(2026, 12, 2, 8, tzinfo=UTC), release_at=datetime(2026, 12, 2, 8, tzinfo=UTC))
        body = StoredNotification.from_row(stored_row).accepted_json()
        assert body == accepted_model(stored_row)
        assert json.loads(body)["send_at"] == json.loads(body)["release_at"] == "2026-12-02T08:00:00Z"

    def test_same_bytes_as_the_model_for_delivery_first(self) -> None:
        stored_row = row(delivery="first", channels=["email", "sms"])
        body = StoredNotification.from_row(stored_row).accepted_json()
        assert body == accepted_model(stored_row)
        assert json.loads(body)["delivery"] == "first"
        assert json.loads(body)["channels"] == ["email", "sms"]

    def test_same_bytes_as_the_model_for_a_template(self) -> None:
        stored_row = template_row()
        assert StoredNotification.from_row(stored_row).accepted_json() == accepted_model(stored_row)

    def test_sms_fragments_and_encoding_when_sms_is_targeted(self) -> None:
        body = json.loads(StoredNotification.from_row(row(message="ж" * 71)).accepted_json())
        assert (body["sms_fragments"], body["sms_encoding"]) == (2, "UCS-2")
        assert "sms_fragments" not in json.loads(StoredNotification.from_row(row(channels=["email"])).accepted_json())
        assert json.loads(StoredNotification.from_row(template_row()).accepted_json())["sms_encoding"] == "UCS-2"


class TestSnsMessage:
    def test_the_snapshot_and_by_default_every_targeted_channel(self) -> None:
        stored = StoredNotification.from_row(row())
        message = stored.sns_message()
        assert (message.notification_id, message.recipient.name, message.recipient.phone_number) == (stored.id, "José", "+14155552671")
        assert json.loads(message.sns_message_attributes()["channels"]["StringValue"]) == ["sms", "email"]

    def test_a_publication_may_address_fewer_channels(self) -> None:
        message = StoredNotification.from_row(row()).sns_message(["email"])
        assert json.loads(message.sns_message_attributes()["channels"]["StringValue"]) == ["email"]

    def test_a_template_notification_carries_its_rendered_content(self) -> None:
        message = NotificationMessage.from_json(StoredNotification.from_row(template_row()).sns_message().to_json())
        assert message.message is None
        assert (message.sms_content().body, message.email_content().subject) == ("Hi José 🎉", "For José")


class TestPublic:
    def test_the_status_reply(self) -> None:
        stored = StoredNotification.from_row(row(subject="S"))
        delivery = {"status": "pending", "attempts": 0, "created_at": CREATED.isoformat(), "updated_at": CREATED.isoformat()}
        public = stored.public(published=False, deliveries={"sms": delivery})
        assert (public.id, public.subject, public.client, public.published) == (stored.id, "S", "acme", False)
        assert public.deliveries["sms"].status == "pending"
        assert (public.sms_fragments, public.sms_encoding, public.template, public.content) == (1, "UCS-2", None, None)

    def test_a_template_notifications_status_shows_the_template_and_what_each_channel_was_sent(self) -> None:
        public = StoredNotification.from_row(template_row()).public(published=True, deliveries={})
        assert (public.template.name, public.template.version, public.category) == ("welcome", 2, "onboarding")  # type: ignore[union-attr]
        assert public.content is not None and public.content.sms.body == "Hi José 🎉" and public.content.sms.fragments == 1  # type: ignore[union-attr]
        assert public.content.email.subject == "For José" and public.content.slack is None  # type: ignore[union-attr]


class TestDeliveredBy:
    @staticmethod
    def delivery(status: str) -> dict[str, object]:
        return {"status": status, "attempts": 1, "created_at": CREATED.isoformat(), "updated_at": CREATED.isoformat()}

    def test_first_names_the_channel_that_was_sent(self) -> None:
        stored = StoredNotification.from_row(row(delivery="first", channels=["sms", "email"]))
        deliveries = {"sms": self.delivery("failed"), "email": self.delivery("sent")}
        public = stored.public(published=True, deliveries=deliveries)
        assert (public.delivery, public.delivered_by) == ("first", "email")

    def test_first_names_a_delivered_one_and_none_while_waiting(self) -> None:
        stored = StoredNotification.from_row(row(delivery="first", channels=["sms", "email"]))
        assert stored.public(published=True, deliveries={"sms": self.delivery("delivered"), "email": self.delivery("cancelled")}).delivered_by == "sms"
        assert stored.public(published=True, deliveries={"sms": self.delivery("sending"), "email": self.delivery("waiting")}).delivered_by is None

    def test_all_has_none(self) -> None:
        stored = StoredNotification.from_row(row())
        assert stored.public(published=True, deliveries={"sms": self.delivery("sent")}).delivered_by is None
