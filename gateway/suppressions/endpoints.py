"""Routes for /suppressions. Thin: the logic is in the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from gateway.auth import RecipientsClient
from gateway.deps import Connection
from gateway.errors import BadRequestError, ErrorBody
from gateway.pagination import CURSOR_DESCRIPTION, CURSOR_PATTERN, Limit
from gateway.suppressions.schemas import SuppressionPage
from gateway.suppressions.service import suppression_service
from gateway.text import STORABLE_PATTERN, ecma_pattern
from shared.channels import Channel

router = APIRouter(
    prefix="/suppressions",
    tags=["suppressions"],
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)

# The longest key a cursor holds: a channel, a space and an address of 320 characters of up to
# 4 UTF-8 bytes, in base64url.
SUPPRESSION_CURSOR_MAX_LENGTH = -(-(len("email ") + 320 * 4) * 4 // 3)
SuppressionCursor = Annotated[
    str | None,
    Query(max_length=SUPPRESSION_CURSOR_MAX_LENGTH, json_schema_extra={"pattern": CURSOR_PATTERN}, description=CURSOR_DESCRIPTION),
]
Address = Annotated[
    str,
    Path(
        description="The suppressed email address or E.164 phone number, exactly as listed.",
        max_length=320,
        json_schema_extra={"pattern": ecma_pattern(STORABLE_PATTERN)},
    ),
]


@router.get("", response_model=SuppressionPage, response_model_exclude_none=True)
async def list_suppressions(
    request: Request,
    connection: Connection,
    _client: RecipientsClient,
    channel: Annotated[Channel | None, Query(description="Only this channel's suppressions.")] = None,
    cursor: SuppressionCursor = None,
    limit: Limit = None,
) -> SuppressionPage:
    """List suppressed addresses by channel and address, a page at a time."""
    return await suppression_service.list_page(
        connection, channel=channel, cursor=cursor, limit=limit or request.app.state.settings.recipients_page_size
    )


@router.delete(
    "/{channel}/{address}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={404: {"model": ErrorBody, "description": "The address is not suppressed."}},
)
async def lift_suppression(channel: Channel, address: Address, connection: Connection, _client: RecipientsClient) -> Response:
    """Lift a suppression: later notifications are sent to the address again."""
    if "\x00" in address:
        raise BadRequestError("address must not contain NUL characters", field="address")
    await suppression_service.lift(connection, channel=channel, address=address)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
