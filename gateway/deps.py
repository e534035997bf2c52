"""Dependencies shared by the routes, as Annotated aliases so handlers read like prose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import asyncpg
from fastapi import Depends, Path, Request

from gateway.errors import BadRequestError
from gateway.recipients.schemas import NAME_PATTERN, NAME_RULES
from gateway.text import ecma_pattern


async def database_connection(request: Request) -> AsyncIterator[asyncpg.Connection]:
    # Autocommit: every write the routes make is a single statement, atomic on its own, so an
    # explicit BEGIN/COMMIT would only add two round trips.
    async with request.app.state.database.connection() as connection:
        yield connection


def _name_in_path(kind: str):  # noqa: ANN202 - returns a FastAPI dependency
    """The ``{name}`` path parameter of a recipient or a template (the same rules for both)."""

    # The pattern is documented, and checked below, where the refusal says the rule in words.
    parameter = Annotated[
        str, Path(description=f"The {kind}'s name: {NAME_RULES}.", max_length=128, json_schema_extra={"pattern": ecma_pattern(NAME_PATTERN.pattern)})
    ]

    async def name_of(name: str) -> str:
        if not NAME_PATTERN.fullmatch(name):
            raise BadRequestError(f"invalid name: the {kind} name must be {NAME_RULES}", field="name")
        return name

    # The annotation FastAPI reads: built here, since this module's annotations are strings.
    name_of.__annotations__ = {"name": parameter, "return": str}
    return name_of


Connection = Annotated[asyncpg.Connection, Depends(database_connection)]
RecipientName = Annotated[str, Depends(_name_in_path("recipient"))]
TemplateName = Annotated[str, Depends(_name_in_path("template"))]
