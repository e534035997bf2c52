"""Routes for /notifications."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response

from gateway.auth import NotificationsClient
from gateway.deps import Connection
from gateway.errors import ErrorBody
from gateway.notifications.schemas import NotificationAccepted, NotificationCreate, NotificationPublic
from gateway.notifications.service import notification_service
from gateway.rate_limit import RateLimited

router = APIRouter(
    prefix="/notifications",
    tags=["notifications"],
    dependencies=[RateLimited],
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes retries safe: a repeat with the same key and body returns the first response and sends nothing.",
    ),
]


@router.post(
    "",
    status_code=201,
    response_model=NotificationAccepted,
    response_model_exclude_none=True,
    responses={409: {"model": ErrorBody, "description": "Idempotency-Key reused with a different body."}},
)
async def post_notification(
    notification: NotificationCreate,
    request: Request,
    connection: Connection,
    client: NotificationsClient,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accept a notification for delivery on each of the recipient's channels."""
    state = request.app.state
    acceptance = await notification_service.accept(
        connection,
        request=notification,
        client=client,
        idempotency_key=idempotency_key,
        publisher=state.publisher,
        outbox_grace_seconds=state.settings.outbox_grace_seconds,
    )
    headers = {"Location": f"/notifications/{acceptance.notification.id}"}
    if acceptance.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        acceptance.notification.model_dump_json(exclude_none=True), status_code=201, headers=headers, media_type="application/json"
    )


@router.get("/{notification_id}", response_model=NotificationPublic, responses={404: {"model": ErrorBody}})
async def get_notification(notification_id: UUID, connection: Connection, _client: NotificationsClient) -> NotificationPublic:
    """A notification and the delivery status of each of its channels."""
    return await notification_service.status(connection, notification_id=notification_id)
