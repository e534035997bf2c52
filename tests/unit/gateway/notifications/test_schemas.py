"""gateway/notifications/schemas.py: the request's validation messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.errors import describe_validation_error
from gateway.notifications.schemas import NotificationCreate
from gateway.notifications.service import fingerprint


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

