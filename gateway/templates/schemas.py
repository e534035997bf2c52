"""Templates in and out of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.content.schemas import Category, Personalisation
from gateway.text import BLANK_CLASS, storable_text

# The texts of a template, before rendering. The channels' limits apply to what they render to;
# these only bound what one template may hold.
MAX_SMS_TEMPLATE_CHARACTERS = 4_000
MAX_SUBJECT_TEMPLATE_CHARACTERS = 1_000
MAX_BODY_TEMPLATE_CHARACTERS = 20_000
MAX_SLACK_TEMPLATE_CHARACTERS = 20_000

# Not blank, storable (no NUL); the subject on one line too.
_TEXT_PATTERN = f"^[^\\x00]*[^\\x00{BLANK_CLASS}][^\\x00]*$"
_LINE_PATTERN = f"^[^\\x00\\r\\n]*[^\\x00\\r\\n{BLANK_CLASS}][^\\x00\\r\\n]*$"


def _text(field: str):  # noqa: ANN202 - returns a validator
    def check(value: str) -> str:
        storable_text(value)
        if not value.strip():
            raise ValueError(f"{field} is blank")
        return value

    return check


def _one_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("the email subject must be one line, without CR or LF")
    return value


def _template_text(field: str, max_length: int, pattern: str = _TEXT_PATTERN) -> Any:
    return Annotated[str, Field(max_length=max_length, json_schema_extra={"pattern": pattern}), AfterValidator(_text(field))]


class EmailTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Annotated[
        _template_text("email subject", MAX_SUBJECT_TEMPLATE_CHARACTERS, _LINE_PATTERN),
        AfterValidator(_one_line),
        Field(description="One line; with ((placeholders))."),
    ]
    body: Annotated[_template_text("email body", MAX_BODY_TEMPLATE_CHARACTERS), Field(description="Plain text; with ((placeholders)).")]


def _at_least_one_channel(schema: dict[str, Any]) -> None:
    schema["examples"] = [
        {
            "sms": "Hi ((first name)), your order ((order ref)) has shipped.",
            "email": {"subject": "Order ((order ref)) has shipped", "body": "Dear ((first name)),\n\nIt is on its way.((gift??\nIt is a gift.))"},
            "slack": "Order *((order ref))* has shipped.",
            "category": "orders",
        }
    ]
    schema["anyOf"] = [{"required": [channel]} for channel in ("sms", "email", "slack")]


class TemplateContent(BaseModel):
    """The body of PUT /templates/{name}: the text for each channel it can be sent on."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_at_least_one_channel)

    # Optional, not null: a channel given is a channel with content (the document's anyOf says so).
    sms: Annotated[_template_text("sms", MAX_SMS_TEMPLATE_CHARACTERS), Field(description="The SMS text.")] = None  # type: ignore[valid-type]
    email: EmailTemplate = None  # type: ignore[assignment]
    slack: Annotated[
        _template_text("slack", MAX_SLACK_TEMPLATE_CHARACTERS),  # type: ignore[valid-type]
        Field(description="Slack mrkdwn; values are escaped (& < >), the template's own markup is kept."),
    ] = None
    category: Annotated[Category, Field(description="The category of notifications sent from it, unless they give one.")] = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _some_channel(self) -> TemplateContent:
        if self.sms is None and self.email is None and self.slack is None:
            raise ValueError("a template needs content for at least one channel: sms, email or slack")
        return self

    def stored(self) -> dict[str, Any]:
        """The version's ``content`` column: the channels' texts."""
        return self.model_dump(exclude_none=True, exclude={"category"})


class TemplatePublic(BaseModel):
    name: str
    version: int
    sms: str | None = None
    email: EmailTemplate | None = None
    slack: str | None = None
    category: str | None = None
    placeholders: list[str] = Field(description="Its placeholders' names, each once, in the order they first appear (sms, email, slack).")
    created_at: datetime = Field(description="When this version was made.")


class TemplatePage(BaseModel):
    items: list[TemplatePublic]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page; absent on the last page.")


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    personalisation: Personalisation | None = None
