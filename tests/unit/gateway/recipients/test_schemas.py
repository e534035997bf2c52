"""gateway/recipients/schemas.py: contact validation and the recipient name pattern."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.errors import describe_validation_error
from gateway.recipients.schemas import NAME_PATTERN, RecipientContacts, RecipientPreferences


class TestRecipientContacts:
    def test_valid_contacts_are_normalised(self) -> None:
        contacts = RecipientContacts(phone_number="+14155552671", email="Jane@Example.COM", slack_id="U0123456789")
        assert contacts.phone_number == "+14155552671"
        assert contacts.email == "Jane@example.com"  # the domain is case-insensitive, the local part is not
        assert contacts.has_contact

    def test_blank_values_mean_absent(self) -> None:
        contacts = RecipientContacts.model_validate({"phone_number": "", "email": "  ", "slack_id": None})
        assert not contacts.has_contact

    @pytest.mark.parametrize(
        ("field", "value", "fragment"),
        [
            ("phone_number", "4155552671", "E.164"),
            ("phone_number", "+1415555267100000", "E.164"),
            ("phone_number", "+10000000000", "not a valid number"),
            ("email", "a@b", "not a valid address"),
            ("slack_id", "#general", "not a Slack id"),
        ],
    )
    def test_invalid_values_are_explained(self, field: str, value: str, fragment: str) -> None:
        with pytest.raises(ValidationError) as caught:
            RecipientContacts.model_validate({field: value})
        message, named = describe_validation_error(caught.value.errors()[0])
        assert named == field
        assert fragment in message
        assert message.startswith(field) or message.startswith(f"invalid {field}")

    @pytest.mark.parametrize("name", ["jane", "Jane Doe", "ops.team+alerts", "x" * 128, "José", "o'brien", "a"])
    def test_good_names(self, name: str) -> None:
        assert NAME_PATTERN.fullmatch(name)

    @pytest.mark.parametrize("name", ["", " lead", "trail ", "x" * 129, "a/b", "a;b", "tab\there", "-x"])
    def test_bad_names(self, name: str) -> None:
        assert not NAME_PATTERN.fullmatch(name)


class TestQuietHours:
    def refusal(self, quiet_hours: object) -> tuple[str, str | None]:
        with pytest.raises(ValidationError) as caught:
            RecipientPreferences.model_validate({"quiet_hours": quiet_hours})
        error = caught.value.errors()[0]
        return describe_validation_error({**error, "loc": ("body", *error["loc"])})

    def test_stored_as_given(self) -> None:
        window = {"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}
        assert RecipientPreferences.model_validate({"quiet_hours": window}).stored() == {"quiet_hours": window}

    def test_an_unknown_time_zone(self) -> None:
        assert self.refusal({"start": "22:00", "end": "07:00", "timezone": "Mars/Olympus"}) == (
            "unknown time zone: 'Mars/Olympus'; give an IANA name such as Europe/Berlin",
            "quiet_hours",
        )

    @pytest.mark.parametrize("timezone", ["../../etc/passwd", "localtime", "", "europe/berlin"])
    def test_only_iana_names(self, timezone: str) -> None:
        assert self.refusal({"start": "22:00", "end": "07:00", "timezone": timezone})[0].startswith("unknown time zone")

    @pytest.mark.parametrize("start", ["24:00", "7:00", "07:60", "0700", 700])
    def test_times_are_hh_mm(self, start: object) -> None:
        assert self.refusal({"start": start, "end": "07:00", "timezone": "UTC"})[0] == "quiet_hours start must be a time as HH:MM, 00:00 to 23:59"

    def test_an_empty_window(self) -> None:
        assert self.refusal({"start": "07:00", "end": "07:00", "timezone": "UTC"})[0] == "quiet_hours start and end must differ"

    def test_every_field_is_needed_and_no_other(self) -> None:
        assert self.refusal({"start": "22:00", "timezone": "UTC"})[0] == "missing quiet_hours.end"
        assert self.refusal({"start": "22:00", "end": "07:00", "timezone": "UTC", "days": "weekdays"})[1] == "quiet_hours"
