"""Recipients in and out of the API, with the validation every field gets."""

from __future__ import annotations

import re
from typing import Annotated

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

NAME_PATTERN = re.compile(r"^\w(?:[\w .@+'-]{0,126}[\w.@+'-])?$")
NAME_RULES = "1-128 letters, digits, spaces or . _ @ + ' -, starting with a letter or digit and not ending with a space"
E164_PATTERN = re.compile(r"^\+[1-9]\d{1,14}$")
# Slack member/channel ids: a type letter (U/W user, C/G channel, D direct message) and
# upper-case letters and digits.
SLACK_ID_PATTERN = re.compile(r"^[UWCGD][A-Z0-9]{6,20}$")


def _phone_number(value: str) -> str:
    if not E164_PATTERN.fullmatch(value):
        raise ValueError("phone_number must be an E.164 number: + and country code, digits only, e.g. +14155552671")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone_number {value!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"phone_number {value!r} is not a valid number for its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"email {value!r} is not a valid address: {exc}") from None


def _slack_id(value: str) -> str:
    if not SLACK_ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"slack_id {value!r} is not a Slack id: a U, W, C, G or D followed by 6-20 upper-case letters or digits"
        )
    return value


PhoneNumber = Annotated[str, AfterValidator(_phone_number)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
SlackId = Annotated[str, AfterValidator(_slack_id)]

NO_CONTACT_MESSAGE = "at least one contact method (phone number, email or Slack ID) must be provided"


class RecipientContacts(BaseModel):
    """The body of PUT /recipients/{name}: the recipient's contact methods, replacing any before."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"phone_number": "+14155552671", "email": "jane@example.com", "slack_id": "U0123456789"}]}
    )

    phone_number: PhoneNumber | None = None
    email: Email | None = None
    slack_id: SlackId | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: object) -> object:
        # The original (Go) gateway treated "" as "not set"; its clients still send that.
        if isinstance(data, dict):
            return {key: None if isinstance(value, str) and not value.strip() else value for key, value in data.items()}
        return data

    @property
    def has_contact(self) -> bool:
        return any((self.phone_number, self.email, self.slack_id))


class RecipientPublic(BaseModel):
    name: str
    phone_number: str | None = None
    email: str | None = None
    slack_id: str | None = None


class RecipientPage(BaseModel):
    items: list[RecipientPublic]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page; absent on the last page.")
