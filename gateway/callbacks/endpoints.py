"""Routes for /callbacks: the calling client's own callback (role ``notifications``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from gateway.auth import NotificationsClient
from gateway.callbacks.schemas import CallbackCreated, CallbackPublic, CallbackUpdate
from gateway.callbacks.service import CallbackService
from gateway.deps import Connection
from gateway.errors import ErrorBody

router = APIRouter(
    prefix="/callbacks",
    tags=["callbacks"],
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)


async def callback_service(request: Request) -> CallbackService:
    return request.app.state.callbacks


Callbacks = Annotated[CallbackService, Depends(callback_service)]


@router.put("", response_model=CallbackCreated)
async def put_callback(callback: CallbackUpdate, connection: Connection, client: NotificationsClient, callbacks: Callbacks) -> CallbackCreated:
    """Set this client's callback: where its delivery events go, and which; answers with the signing secret."""
    return await callbacks.put(connection, client=client.common_name, callback=callback)


@router.get("", response_model=CallbackPublic, responses={404: {"model": ErrorBody}})
async def get_callback(connection: Connection, client: NotificationsClient, callbacks: Callbacks) -> CallbackPublic:
    """This client's callback without its secret, with the events pending and the last success and failure."""
    return await callbacks.get(connection, client=client.common_name)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_callback(connection: Connection, client: NotificationsClient, callbacks: Callbacks) -> Response:
    """Remove this client's callback and the events still owed to it (also succeeds when there is none)."""
    await callbacks.delete(connection, client=client.common_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/rotate-secret", response_model=CallbackCreated, responses={404: {"model": ErrorBody}})
async def rotate_callback_secret(connection: Connection, client: NotificationsClient, callbacks: Callbacks) -> CallbackCreated:
    """Replace the signing secret; the previous one still signs beside it for CALLBACKS_ROTATION_GRACE_SECONDS."""
    return await callbacks.rotate_secret(connection, client=client.common_name)
