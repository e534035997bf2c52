"""Recipients in and out of the API, with the validation every field gets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT, EMAIL_MAX_LENGTH
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator

from gateway.content.schemas import Category
from gateway.recipients.quiet_hours import TIME_PATTERN, known_time_zones
from gateway.text import BLANK_CLASS, BLANK_PATTERN, ecma_pattern
from shared.channels import CONTACT_FIELDS

# \w inside classes only, so that gateway/text.py's ecma_pattern can write it for the document.
NAME_PATTERN = re.compile(r"^[\w](?:[\w .@+'-]{0,126}[\w.@+'-])?$")
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


# email-validator takes about 75 µs an address (measured on the development machine, two thirds
# of it the domain: IDNA and Unicode checks), a quarter of a CSV job's CPU at 50,000 rows. For an
# address of one @ whose local part is plain ASCII dot-atom (its DOT_ATOM_TEXT, not one of the
# mailbox names it lower-cases) and whose domain is ASCII letters, digits, dots and hyphens, what
# validate_email returns is that local part, "@", and the domain's normalisation, which depends
# on the domain alone (validate_email_domain_name's result); so the domain's, taken from an
# address validate_email accepted, is remembered and later addresses at that domain are not
# checked again. Anything else, every refusal included, is validate_email's verdict and message.
_ASCII_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")
_LOWER_CASED_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
MAX_REMEMBERED_DOMAINS = 10_000
_normalised_domains: dict[str, str] = {}


def _email(value: str) -> str:
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"email must be at most {MAX_EMAIL_LENGTH} characters")
    local, at, domain = value.rpartition("@")
    plain = (
        bool(at)
        and DOT_ATOM_TEXT.match(local) is not None
        and local.lower() not in _LOWER_CASED_MAILBOXES
        and _ASCII_DOMAIN.fullmatch(domain) is not None
    )
    if plain and len(value) <= EMAIL_MAX_LENGTH and (normalised_domain := _normalised_domains.get(domain)) is not None:
        return f"{local}@{normalised_domain}"
    try:
        validated = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"email {value!r} is not a valid address: {exc}") from None
    # Only a domain that stays ASCII and as long (no Punycode turned to Unicode): then the length
    # checks validate_email makes of the address are the one above.
    if plain and validated.domain == validated.ascii_domain and len(validated.domain) == len(domain):
        if len(_normalised_domains) >= MAX_REMEMBERED_DOMAINS:
            _normalised_domains.clear()
        _normalised_domains[domain] = validated.domain
    return validated.normalized


def _slack_id(value: str) -> str:
    if not SLACK_ID_PATTERN.fullmatch(value):
        raise ValueError(
            f"slack_id {value!r} is not a Slack id: a U, W, C, G or D followed by 6-20 upper-case letters or digits"
        )
    return value


# Each contact's validator, by field: a recipient's contacts and a job row's addresses
# (gateway/jobs/rows.py) are checked by the same ones. Each returns the address normalised, or
# raises ValueError with the sentence a client reads.
CONTACT_VALIDATORS: dict[str, Callable[[str], str]] = {"phone_number": _phone_number, "email": _email, "slack_id": _slack_id}


def _or_blank(pattern: re.Pattern[str]) -> dict[str, str]:
    """The OpenAPI pattern of a contact: ``pattern``, or blank (which means "not set")."""
    return {"pattern": f"^(?:{ecma_pattern(pattern.pattern).removeprefix('^').removesuffix('$')}|[{BLANK_CLASS}]*)$"}


# What the document cannot state as a pattern (a number valid for its country, an address's
# full syntax) the validators check and the refusal says in words.
PhoneNumber = Annotated[str, Field(json_schema_extra=_or_blank(E164_PATTERN)), AfterValidator(_phone_number)]
# The shape every address the validator takes has: no blanks, one @, a dot in the domain.
EMAIL_SHAPE = re.compile(f"^[^@{BLANK_CLASS}]+@[^@{BLANK_CLASS}]+\\.[^@{BLANK_CLASS}]+$")
MAX_EMAIL_LENGTH = 320


def _email_schema(schema: dict[str, Any]) -> None:
    # The length limit is an address's: a blank value of any length means "not set" (as the
    # validator treats it), so the document limits only the address alternative.
    schema.pop("pattern", None)
    schema["anyOf"] = [
        {"maxLength": MAX_EMAIL_LENGTH, "pattern": ecma_pattern(EMAIL_SHAPE.pattern)},
        {"pattern": BLANK_PATTERN},
    ]


Email = Annotated[str, Field(json_schema_extra=_email_schema), AfterValidator(_email)]
SlackId = Annotated[str, Field(json_schema_extra=_or_blank(SLACK_ID_PATTERN)), AfterValidator(_slack_id)]


NO_CONTACT_MESSAGE = "at least one contact method (phone number, email or Slack ID) must be provided"


def _contacts_schema(schema: dict[str, Any]) -> None:
    schema["examples"] = [{"phone_number": "+14155552671", "email": "jane@example.com", "slack_id": "U0123456789"}]
    # NO_CONTACT_MESSAGE's rule: at least one contact that is not blank.
    schema["anyOf"] = [
        {"required": [field], "properties": {field: {"type": "string", "pattern": f"[^{BLANK_CLASS}]"}}} for field in CONTACT_FIELDS
    ]


class RecipientContacts(BaseModel):
    """The body of PUT /recipients/{name}: the recipient's contact methods, replacing any before."""

    model_config = ConfigDict(json_schema_extra=_contacts_schema)

    phone_number: Annotated[
        PhoneNumber | None, Field(description="E.164 (+, country code, digits) and a valid number for its country; blank means not set.")
    ] = None
    email: Annotated[
        Email | None, Field(description="An email address, its syntax as email-validator checks it (no DNS lookup); blank means not set.")
    ] = None
    slack_id: Annotated[
        SlackId | None,
        Field(description="A Slack member or channel id: U, W, C, G or D and 6-20 upper-case letters or digits; blank means not set."),
    ] = None

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


# -- preferences ------------------------------------------------------------------------------

MAX_PREFERENCE_CATEGORIES = 100


def _keys_are_categories(schema: dict[str, Any]) -> None:
    """What pydantic writes for a dict whose keys have a pattern is ``patternProperties``, which
    allows any other key with any value: say instead that every key is a category."""
    pattern, values = next(iter(schema.pop("patternProperties", {}).items()), (None, None))
    if pattern is not None:
        schema["propertyNames"] = {**schema.get("propertyNames", {}), "pattern": pattern}
        schema["additionalProperties"] = values


class ChannelSwitches(BaseModel):
    """Per channel: false turns it off; absent (or true) leaves it on."""

    model_config = ConfigDict(extra="forbid")

    # Strict: true or false, not "no" or 0 (what the document says).
    sms: StrictBool | None = None
    email: StrictBool | None = None
    slack: StrictBool | None = None


def _known_time_zone(value: str) -> str:
    if value not in known_time_zones():
        raise ValueError(f"unknown time zone: {value!r}; give an IANA name such as Europe/Berlin")
    return value


def _wall_time(field: str):  # noqa: ANN202 - returns a validator
    def check(value: object) -> object:
        if not isinstance(value, str) or not re.fullmatch(TIME_PATTERN, value):
            raise ValueError(f"quiet_hours {field} must be a time as HH:MM, 00:00 to 23:59")
        return value

    return check


class QuietHoursPreference(BaseModel):
    """A daily window of the recipient's local time in which notifications are held until it ends."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"start": "22:00", "end": "07:00", "timezone": "Europe/Berlin"}]})

    start: Annotated[
        str, Field(json_schema_extra={"pattern": TIME_PATTERN}, description="HH:MM, 24-hour, local time."), BeforeValidator(_wall_time("start"))
    ]
    end: Annotated[
        str,
        Field(json_schema_extra={"pattern": TIME_PATTERN}, description="HH:MM; before start: the window spans midnight."),
        BeforeValidator(_wall_time("end")),
    ]
    timezone: Annotated[str, Field(max_length=64, description="An IANA time zone name."), AfterValidator(_known_time_zone)]

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursPreference:
        if self.start == self.end:
            raise ValueError("quiet_hours start and end must differ")
        return self


class RecipientPreferences(BaseModel):
    """The body of PUT /recipients/{name}/preferences, replacing any before: the channels the
    recipient turned off, globally and per category."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"channels": {"sms": False}, "categories": {"marketing": {"email": False, "slack": False}}}]},
    )

    # Optional, not null (as the document says).
    channels: Annotated[ChannelSwitches, Field(description="Every notification's channels.")] = None  # type: ignore[assignment]
    categories: Annotated[
        dict[Category, ChannelSwitches],
        Field(
            max_length=MAX_PREFERENCE_CATEGORIES,
            description="The channels of notifications of one category.",
            json_schema_extra=_keys_are_categories,
        ),
    ] = None  # type: ignore[assignment]
    quiet_hours: Annotated[
        QuietHoursPreference, Field(description="Hold notifications in this daily window until it ends (critical categories are not held).")
    ] = None  # type: ignore[assignment]

    def stored(self) -> dict[str, Any]:
        """The ``recipients.preferences`` document: only what was said (None left out)."""
        return self.model_dump(exclude_none=True)


class ChannelSwitchesPublic(BaseModel):
    sms: bool
    email: bool
    slack: bool


class RecipientPreferencesPublic(BaseModel):
    channels: ChannelSwitchesPublic
    categories: dict[str, ChannelSwitchesPublic]
    quiet_hours: QuietHoursPreference | None = Field(default=None, description="Absent when the recipient has none.")
