"""gateway/notifications/schemas.py: the request's validation messages and the 201 body's bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from gateway.errors import describe_validation_error
from gateway.notifications.schemas import NotificationAccepted, NotificationCreate, accepted_json
from gateway.notifications.service import fingerprint, uuid7


class TestNotificationCreate:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"message": "m"}, "missing recipient"),
            ({"recipient": " ", "message": "m"}, "missing recipient"),
            ({"recipient": "r"}, "missing message"),
            ({"recipient": "r", "message": ""}, "missing message"),
        ],
    )
    def test_original_messages(self, body: dict, message: str) -> None:
        with pytest.raises(ValidationError) as caught:
            NotificationCreate.model_validate(body)
        assert describe_validation_error(caught.value.errors()[0])[0] == message

    def test_channels_must_be_distinct_and_known(self) -> None:
        with pytest.raises(ValidationError):
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms", "sms"]})
        with pytest.raises(ValidationError):
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["pager"]})

    def test_fingerprint_ignores_key_order_but_not_content(self) -> None:
        a = NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms"]})
        b = NotificationCreate.model_validate({"channels": ["sms"], "message": "m", "recipient": "r"})
        c = NotificationCreate.model_validate({"recipient": "r", "message": "m2", "channels": ["sms"]})
        assert fingerprint(a) == fingerprint(b) != fingerprint(c)


class TestAcceptedJson:
    @pytest.mark.parametrize("subject", [None, "Order update"])
    @pytest.mark.parametrize("created_at", [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)])
    def test_same_bytes_as_the_model(self, subject: str | None, created_at: datetime) -> None:
        row = {
            "id": uuid7(), "recipient": "José", "message": 'a "quoted" \\ line\nand 🎉', "subject": subject,
            "channels": ["sms", "email"], "created_at": created_at, "client": "acme",
        }
        assert accepted_json(row) == NotificationAccepted(**row).model_dump_json(exclude_none=True).encode()
