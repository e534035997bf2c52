"""Listing a page at a time (recipients, templates by name; suppressions by channel and address):
the cursor is the last key of a page in unpadded base64url. Names are at most 128 characters of at
most 4 UTF-8 bytes each."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query

from gateway.errors import BadRequestError
from gateway.recipients.schemas import NAME_PATTERN

CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
CURSOR_DESCRIPTION = "`next_cursor` of the previous page (unpadded base64url)."


def encode_cursor(last_name: str) -> str:
    return base64.urlsafe_b64encode(last_name.encode()).decode().rstrip("=")


def decode_cursor_text(cursor: str) -> str:
    """The key a cursor holds, for the caller to check; refused when it is not base64url text."""
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise foreign_cursor() from None


def foreign_cursor() -> BadRequestError:
    return BadRequestError("cursor is not one this API returned", field="cursor")


def decode_cursor(cursor: str) -> str:
    name = decode_cursor_text(cursor)
    # A cursor is a name we handed out; anything else is not one of ours.
    if not NAME_PATTERN.fullmatch(name):
        raise foreign_cursor()
    return name


CURSOR_MAX_LENGTH = len(encode_cursor("\U0010ffff" * 128))

# The query parameters of a listing. A cursor that is not one of ours is refused by decode_cursor, in words.
Cursor = Annotated[
    str | None, Query(max_length=CURSOR_MAX_LENGTH, json_schema_extra={"pattern": CURSOR_PATTERN}, description=CURSOR_DESCRIPTION)
]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="Page size.")]
