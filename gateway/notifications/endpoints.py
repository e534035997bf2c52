"""Routes for /notifications, and a shortcut to POST /notifications past FastAPI's request handling."""

from __future__ import annotations

import json
import re
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import ClientIdentity, NotificationsClient, Role, identity_of
from gateway.deps import Connection, PooledConnection
from gateway.errors import ApiError, ErrorBody, api_error_response
from gateway.notifications.schemas import NotificationAccepted, NotificationCreate, NotificationPublic
from gateway.notifications.service import notification_service

router = APIRouter(
    prefix="/notifications",
    tags=["notifications"],
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)

IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces
IDEMPOTENCY_KEY_MAX_LENGTH = 255

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=IDEMPOTENCY_KEY_PATTERN,
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
    client: NotificationsClient,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accept a notification for delivery on each of the recipient's channels."""
    return await _accept(request.app.state, notification, client=client, idempotency_key=idempotency_key)


async def _accept(state: State, notification: NotificationCreate, *, client: ClientIdentity, idempotency_key: str | None) -> Response:
    async with PooledConnection(state) as connection:
        acceptance = await notification_service.accept(
            connection,
            request=notification,
            client=client,
            idempotency_key=idempotency_key,
            publisher=state.publisher,
            outbox_grace_seconds=state.settings.outbox_grace_seconds,
        )
    headers = {"Location": f"/notifications/{acceptance.id}"}
    if acceptance.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(acceptance.body, status_code=201, headers=headers, media_type="application/json")


@router.get("/{notification_id}", response_model=NotificationPublic, responses={404: {"model": ErrorBody}})
async def get_notification(notification_id: UUID, connection: Connection, _client: NotificationsClient) -> NotificationPublic:
    """A notification and the delivery status of each of its channels."""
    return await notification_service.status(connection, notification_id=notification_id)


class PostNotificationShortcut:
    """POST /notifications without FastAPI's request handling, for requests that are all valid.

    Routing, the Request object, dependency solving and the exit stacks cost the gateway more CPU
    per notification than the statement that stores it. A request whose every input is valid (a
    JSON body NotificationCreate accepts, a well-formed Idempotency-Key or none, a certificate with
    the role) is accepted here, by the same ``_accept`` as the route; anything else goes on to the
    route above, body and all, which answers it as it always has (400, 403, 413, ...). The route
    stays what OpenAPI documents. Pure ASGI, inside GatewayMiddleware (metrics, body limit, 503s).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # What the router puts in the scope for this route (GatewayMiddleware labels metrics by it).
        self.route = next(route for route in router.routes if getattr(route, "endpoint", None) is post_notification)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        eligible, idempotency_key = _eligible(scope)
        if not eligible:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        valid = _valid_inputs(scope, body)
        if valid is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.route  # as the router would, for the metrics
        try:
            response = await _accept(scope["app"].state, valid[0], client=valid[1], idempotency_key=idempotency_key)
        except ApiError as exc:
            response = api_error_response(exc)
        await response(scope, receive, send)


_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def _eligible(scope: Scope) -> tuple[bool, str | None]:
    """Whether this shortcut may take the request, and its Idempotency-Key.

    Only a JSON body of a declared length: GatewayMiddleware has refused (413) a length over the
    limit, so reading it here cannot fail (a chunked body over the limit is the route's to refuse).
    """
    if scope["type"] != "http" or scope["path"] != "/notifications" or scope["method"] != "POST":
        return False, None
    content_type, length, keys = None, None, []
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length":
            length = value
        elif name == b"idempotency-key":
            keys.append(value.decode("latin-1"))
    if content_type != b"application/json" or length is None or len(keys) > 1:
        return False, None
    key = keys[0] if keys else None
    if key is not None and (len(key) > IDEMPOTENCY_KEY_MAX_LENGTH or not _IDEMPOTENCY_KEY.fullmatch(key)):
        return False, None
    return True, key


def _valid_inputs(scope: Scope, body: bytes) -> tuple[NotificationCreate, ClientIdentity] | None:
    """What the route would be called with, or None when FastAPI must look at the request."""
    try:
        client = identity_of(scope)
        notification = NotificationCreate.model_validate(json.loads(body))
    except Exception:  # noqa: BLE001 - whatever it is, the route explains it to the client
        return None
    if Role.NOTIFICATIONS.value not in client.roles:
        return None
    return notification, client


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives the body already read, then the client's own channel."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
