"""shared/messages.py: what each channel sends, for plain and template notifications alike."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.channels import Channel
from shared.messages import ChannelContent, EmailContent, NotificationMessage, RecipientSnapshot, SlackContent, SmsContent


def message(**fields: Any) -> NotificationMessage:
    base: dict[str, Any] = {
        "notification_id": uuid.uuid4(),
        "recipient": RecipientSnapshot(name="ada", phone_number="+14155552671", email="ada@example.com", slack_id="U0123456"),
        "channels": [Channel.SMS, Channel.EMAIL, Channel.SLACK],
        "client": "billing",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return NotificationMessage(**{**base, **fields})


class TestPlain:
    def test_every_channel_sends_the_message(self) -> None:
        plain = message(message="Hello", subject="Greetings")
        assert plain.sms_content() == SmsContent(body="Hello")
        assert plain.email_content() == EmailContent(subject="Greetings", body="Hello")
        assert plain.slack_content() == SlackContent(text="Hello")

    def test_the_default_subject(self) -> None:
        assert message(message="Hello").email_content().subject == "Notification"

    def test_a_message_published_before_content_existed_still_parses(self) -> None:
        old = message(message="Hello").to_json()
        assert '"content"' not in old
        assert NotificationMessage.from_json(old).sms_content().body == "Hello"


class TestRendered:
    CONTENT = ChannelContent(
        sms=SmsContent(body="Hi Ada"), email=EmailContent(subject="For Ada", body="Dear Ada"), slack=SlackContent(text="*Ada*")
    )

    def test_each_channel_sends_its_own(self) -> None:
        rendered = NotificationMessage.from_json(message(content=self.CONTENT).to_json())
        assert (rendered.sms_content().body, rendered.email_content().subject, rendered.slack_content().text) == ("Hi Ada", "For Ada", "*Ada*")
        assert rendered.message is None

    def test_content_for_every_addressed_channel_is_required(self) -> None:
        with pytest.raises(ValidationError, match="no content for slack"):
            message(content=ChannelContent(sms=SmsContent(body="Hi")), channels=[Channel.SMS, Channel.SLACK])

    def test_neither_message_nor_content_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="neither message nor content"):
            message()
