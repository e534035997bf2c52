"""gateway/notifications/schemas.py: the request's validation messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gateway.errors import describe_validation_error
from gateway.notifications.schemas import SEND_AT_FORMAT, NotificationCreate
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



class TestDelivery:
    def test_all_by_default_and_the_same_request_as_before_it_existed(self) -> None:
        given = NotificationCreate.model_validate({"recipient": "r", "message": "m", "delivery": "all"})
        omitted = NotificationCreate.model_validate({"recipient": "r", "message": "m"})
        assert given.delivery == omitted.delivery == "all"
        # An Idempotency-Key's replays from before the field stay replays.
        assert fingerprint(given) == fingerprint(omitted)

    def test_first_is_another_request(self) -> None:
        first = NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms"], "delivery": "first"})
        every = NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms"]})
        assert fingerprint(first) != fingerprint(every)

    def test_first_needs_channels(self) -> None:
        with pytest.raises(ValidationError) as caught:
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "delivery": "first"})
        assert describe_validation_error(caught.value.errors()[0])[0] == 'delivery "first" needs channels: the channels to try, in order'

    def test_first_with_one_channel_is_fine(self) -> None:
        assert NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["email"], "delivery": "first"}).channels == ["email"]

    @pytest.mark.parametrize("value", ["any", "FIRST", 1, None])
    def test_an_unknown_mode_is_refused_naming_the_field(self, value: object) -> None:
        with pytest.raises(ValidationError) as caught:
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "channels": ["sms"], "delivery": value})
        message, field = describe_validation_error(caught.value.errors()[0])[:2]
        assert field == "delivery", message


class TestSendAt:
    def refusal(self, send_at: object) -> str:
        with pytest.raises(ValidationError) as caught:
            NotificationCreate.model_validate({"recipient": "r", "message": "m", "send_at": send_at})
        return describe_validation_error({**caught.value.errors()[0], "loc": ("body", "send_at")})[0]

    def test_with_an_offset_it_is_the_instant_in_utc(self) -> None:
        parsed = NotificationCreate.model_validate({"recipient": "r", "message": "m", "send_at": "2026-12-02T09:00:00+01:00"})
        assert parsed.send_at == datetime(2026, 12, 2, 8, tzinfo=UTC) and parsed.send_at.utcoffset() == timedelta(0)

    @pytest.mark.parametrize("send_at", ["2026-12-02T09:00:00", "2026-12-02T09:00"])
    def test_without_an_offset(self, send_at: str) -> None:
        assert self.refusal(send_at) == "send_at needs a UTC offset"

    @pytest.mark.parametrize("send_at", ["2026-12-02", "1700000000", 1700000000, "tomorrow", "2026-13-02T09:00:00Z", True, {}])
    def test_not_a_date_and_time(self, send_at: object) -> None:
        assert self.refusal(send_at) == SEND_AT_FORMAT

    def test_beyond_what_a_datetime_holds_in_utc(self) -> None:
        assert self.refusal("9999-12-31T23:59:59-01:00") == "send_at is more than 7 days ahead; the limit is 7 days"
        assert self.refusal("0001-01-01T00:00:00+01:00") == "send_at is in the past"

    def test_what_rfc_3339_allows_and_datetime_cannot_hold(self) -> None:
        leap = NotificationCreate.model_validate({"recipient": "r", "message": "m", "send_at": "2016-12-31T23:59:60Z"})
        assert leap.send_at == datetime(2017, 1, 1, tzinfo=UTC)
        assert self.refusal("0000-01-01T00:00:00Z") == "send_at is in the past"

    def test_the_same_instant_is_the_same_request(self) -> None:
        a = NotificationCreate.model_validate({"recipient": "r", "message": "m", "send_at": "2026-12-02T09:00:00+01:00"})
        b = NotificationCreate.model_validate({"recipient": "r", "message": "m", "send_at": "2026-12-02T08:00:00Z"})
        c = NotificationCreate.model_validate({"recipient": "r", "message": "m"})
        assert fingerprint(a) == fingerprint(b) != fingerprint(c)
