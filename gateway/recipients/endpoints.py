"""Routes for /recipients. Thin: validation is in the schemas, logic in the service."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from gateway.auth import RecipientsClient
from gateway.deps import Connection, RecipientName
from gateway.errors import ErrorBody
from gateway.pagination import Cursor, Limit
from gateway.recipients.schemas import (
    RecipientContacts,
    RecipientPage,
    RecipientPreferences,
    RecipientPreferencesPublic,
    RecipientPublic,
)
from gateway.recipients.service import recipient_service

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
    cursor: Cursor = None,
    limit: Limit = None,
) -> RecipientPage:
    """List recipients by name, a page at a time."""
    return await recipient_service.list_page(
        connection, cursor=cursor, limit=limit or request.app.state.settings.recipients_page_size
    )


@router.put(
    "/{name}/preferences", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses={404: {"model": ErrorBody}}
)
async def put_preferences(
    name: RecipientName, preferences: RecipientPreferences, connection: Connection, _client: RecipientsClient
) -> Response:
    """Replace the channels a recipient turned off, globally and per category."""
    await recipient_service.put_preferences(connection, name=name, preferences=preferences)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/preferences", response_model=RecipientPreferencesPublic, response_model_exclude_none=True, responses={404: {"model": ErrorBody}}
)
async def get_preferences(name: RecipientName, connection: Connection, _client: RecipientsClient) -> RecipientPreferencesPublic:
    """Read a recipient's preferences: every switch, on unless turned off."""
    return await recipient_service.get_preferences(connection, name=name)
