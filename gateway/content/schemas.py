"""The API's shapes for content, shared by templates, notifications and preferences: categories,
personalisation, and what each channel sends (a preview, a template notification's status)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from gateway.text import STORABLE_PATTERN, storable_text
from shared.messages import ChannelContent
from shared.sms import SmsEncoding, sms_length

DEFAULT_CATEGORY = "general"
CATEGORY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CATEGORY_RULES = "1-64 lower-case letters, digits, _ or -, starting with a letter or digit"


def _category(value: str) -> str:
    if not CATEGORY_PATTERN.fullmatch(value):
        raise ValueError(f"invalid category {value!r}: a category is {CATEGORY_RULES}")
    return value


Category = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"pattern": CATEGORY_PATTERN.pattern}, description=f"A category: {CATEGORY_RULES}."),
    AfterValidator(_category),
]

# Values are stored in the rendered text: Postgres must be able to store them.
StorableValue = Annotated[str, Field(json_schema_extra={"pattern": STORABLE_PATTERN}), AfterValidator(storable_text)]
Scalar = StorableValue | int | float | bool
Personalisation = Annotated[
    dict[str, Scalar | list[Scalar] | None],
    Field(
        description="Values for the template's placeholders, by name (case, spaces, underscores and hyphens ignored); "
        "a list renders one item per line; keys the template does not use are ignored."
    ),
]


class SmsRendered(BaseModel):
    body: str
    fragments: int = Field(description="SMS messages it is sent as (153 GSM-7 septets or 67 UCS-2 units each when more than one).")
    encoding: SmsEncoding


class EmailRendered(BaseModel):
    subject: str
    body: str


class SlackRendered(BaseModel):
    text: str


class ContentPublic(BaseModel):
    """What each channel sends (the channels with content only)."""

    sms: SmsRendered | None = None
    email: EmailRendered | None = None
    slack: SlackRendered | None = None

    @classmethod
    def of(cls, content: ChannelContent) -> ContentPublic:
        sms = None
        if content.sms is not None:
            length = sms_length(content.sms.body)
            sms = SmsRendered(body=content.sms.body, fragments=length.fragments, encoding=length.encoding)
        return cls(
            sms=sms,
            email=EmailRendered(subject=content.email.subject, body=content.email.body) if content.email is not None else None,
            slack=SlackRendered(text=content.slack.text) if content.slack is not None else None,
        )
