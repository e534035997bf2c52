"""Routes for /recipients. Thin: validation is in the schemas, logic in the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from gateway.auth import RecipientsClient
from gateway.deps import Connection, RecipientName
from gateway.errors import ErrorBody
from gateway.recipients.schemas import RecipientContacts, RecipientPage, RecipientPublic
from gateway.recipients.service import CURSOR_MAX_LENGTH, CURSOR_PATTERN, recipient_service

router = APIRouter(
    prefix="/recipients",
    tags=["recipients"],
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)


@router.put("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def put_recipient(name: RecipientName, contacts: RecipientContacts, connection: Connection, _client: RecipientsClient) -> Response:
    """Create or replace a recipient and its contact methods."""
    await recipient_service.put(connection, name=name, contacts=contacts)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}",
    response_model=RecipientPublic,
    response_model_exclude_none=True,
    responses={404: {"model": ErrorBody}},
)
async def get_recipient(name: RecipientName, connection: Connection, _client: RecipientsClient) -> RecipientPublic:
    """Read a recipient; contact methods it does not have are omitted."""
    return await recipient_service.get(connection, name=name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_recipient(name: RecipientName, connection: Connection, _client: RecipientsClient) -> Response:
    """Delete a recipient (also succeeds when there is none). Accepted notifications are unaffected."""
    await recipient_service.delete(connection, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=RecipientPage, response_model_exclude_none=True)
async def list_recipients(
    request: Request,
    connection: Connection,
    _client: RecipientsClient,
    cursor: Annotated[
        str | None,
        # A cursor that is not one of ours is refused by the service, in words.
        Query(
            max_length=CURSOR_MAX_LENGTH,
            json_schema_extra={"pattern": CURSOR_PATTERN},
            description="`next_cursor` of the previous page (unpadded base64url).",
        ),
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="Page size.")] = None,
) -> RecipientPage:
    """List recipients by name, a page at a time."""
    return await recipient_service.list_page(
        connection, cursor=cursor, limit=limit or request.app.state.settings.recipients_page_size
    )
