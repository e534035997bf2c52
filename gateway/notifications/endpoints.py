"""Routes for /notifications: POST (the accept), POST /batch (up to 1,000 at once, a FastAPI
route: not the hot path), GET /{notification_id} (its status) and POST /{notification_id}/cancel
(while it is scheduled).

POST /notifications is the gateway's hot path, so it is a plain ASGI endpoint (``accept_route``)
rather than a FastAPI route: FastAPI's request handling (the Request object, dependency solving,
exit stacks, the response model) cost the gateway more CPU per notification than the statement
that stores it. It is still routed by the app's router (405s, metrics labels), its errors still
go through ``gateway/errors.py``'s handlers, and its OpenAPI operation is generated from the same
pydantic models (``openapi_operation``). What it does, in this order, as a FastAPI route did:

1. read the body and parse it as JSON (when the content type says JSON, as FastAPI does);
2. the client's rate limit (when ``GATEWAY_RATE_LIMIT_ENABLED``), 429;
3. the client certificate's role, 403;
4. validate the Idempotency-Key header, then the body, 400 (``describe_validation_error``);
5. accept (``NotificationService.accept_one``): 201 with the stored notification.
"""

from __future__ import annotations

import email.message
import json
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request
from pydantic import Field, TypeAdapter, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from starlette.datastructures import State
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.auth import NotificationsClient, NotificationsReader, Role, authorise, identity_of
from gateway.deps import Connection
from gateway.errors import BadRequestError, ErrorBody, describe_validation_error, invalid_input
from gateway.notifications.schemas import (
    BatchResults,
    NotificationAccepted,
    NotificationBatch,
    NotificationCreate,
    NotificationPublic,
)
from gateway.notifications.service import Acceptance, AcceptRequest, NotificationService

TAGS = ["notifications"]
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}}

router = APIRouter(prefix="/notifications", tags=TAGS, responses=ERROR_RESPONSES)


async def notification_service(request: Request) -> NotificationService:
    return request.app.state.notifications


Notifications = Annotated[NotificationService, Depends(notification_service)]


@router.get("/{notification_id}", response_model=NotificationPublic, responses={404: {"model": ErrorBody}})
async def get_notification(
    notification_id: UUID, connection: Connection, client: NotificationsReader, notifications: Notifications
) -> NotificationPublic:
    """A notification of this client (any client's, for the role audit) and the delivery status of each of its channels."""
    return await notifications.status(connection, notification_id=notification_id, reader=client)


@router.post(
    "/{notification_id}/cancel",
    response_model=NotificationPublic,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody, "description": "Already released: a delivery was published."}},
)
async def cancel_notification(
    notification_id: UUID, connection: Connection, client: NotificationsClient, notifications: Notifications
) -> NotificationPublic:
    """Cancel a scheduled notification of this client: its deliveries become cancelled and nothing is sent."""
    return await notifications.cancel(connection, notification_id=notification_id, client=client)


# -- the Idempotency-Key of both POSTs ---------------------------------------------------

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"  # printable ASCII, no spaces
IDEMPOTENCY_KEY_MAX_LENGTH = 255
_IDEMPOTENCY_KEY_DESCRIPTION = "Makes retries safe: a repeat with the same key and body returns the first response and sends nothing."
IdempotencyKey = TypeAdapter(
    Annotated[
        str | None,
        Field(
            description=_IDEMPOTENCY_KEY_DESCRIPTION,
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
            pattern=IDEMPOTENCY_KEY_PATTERN,
        ),
    ]
)
_IDEMPOTENCY_KEY_NAME = IDEMPOTENCY_KEY_HEADER.lower().encode("latin-1")


# -- POST /notifications/batch ---------------------------------------------------------


@router.post(
    "/batch",
    response_model=BatchResults,
    response_model_exclude_none=True,
    responses={409: {"model": ErrorBody, "description": "Idempotency-Key used before with a different batch."}},
)
async def post_batch(
    batch: NotificationBatch,
    client: NotificationsClient,
    notifications: Notifications,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Covers the whole batch: a repeat answers every stored item as before and sends nothing twice.",
            min_length=1,
            max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
            pattern=IDEMPOTENCY_KEY_PATTERN,
        ),
    ] = None,
) -> BatchResults:
    """Accept up to 1,000 notifications at once, each judged on its own: a result per item, the valid ones stored together."""
    accepted = await notifications.accept_batch(batch.notifications, idempotency_key=idempotency_key, client=client)
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return BatchResults(results=accepted.results)


# Paths whose bodies carry many notifications (GATEWAY_MAX_BULK_BODY_BYTES).
BULK_PATHS = frozenset({"/notifications/batch"})


# -- POST /notifications ------------------------------------------------------------------


class AcceptNotification:
    """The ASGI endpoint of POST /notifications (the module docstring lists its steps)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = accept_route  # as FastAPI's routes do: GatewayMiddleware labels metrics by it
        acceptance = await _accept(scope, receive, scope["app"].state)
        headers = {"Location": f"/notifications/{acceptance.id}"}
        if acceptance.replayed:
            headers["Idempotent-Replayed"] = "true"
        response = Response(acceptance.notification.accepted_json(), status_code=201, headers=headers, media_type="application/json")
        await response(scope, receive, send)


async def _accept(scope: Scope, receive: Receive, state: State) -> Acceptance:
    content_type, key = _headers(scope)
    document = _json_body(await _read_body(receive), content_type)
    client = identity_of(scope)
    if state.rate_limiter is not None:
        async with state.database.connection() as connection:
            await state.rate_limiter.enforce(connection, client=client.common_name)
    authorise(client, Role.NOTIFICATIONS)
    key = _validated_key(key)  # before the body, as FastAPI reports a header's error first
    request = AcceptRequest(notification=_validated_body(document), idempotency_key=key)
    return await state.notifications.accept_one(request, client=client)


def _headers(scope: Scope) -> tuple[str | None, str | None]:
    """The Content-Type and the (first) Idempotency-Key, as Starlette would decode them."""
    content_type = key = None
    for name, value in scope["headers"]:
        if name == b"content-type" and content_type is None:
            content_type = value.decode("latin-1")
        elif name == _IDEMPOTENCY_KEY_NAME and key is None:
            key = value.decode("latin-1")
    return content_type, key


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _json_body(body: bytes, content_type: str | None) -> Any:
    """The body as FastAPI hands it to validation: parsed when it is JSON by its content type,
    the raw bytes otherwise (which validation refuses), None when empty."""
    if not body:
        return None
    if content_type != "application/json":
        if content_type is None:
            return body
        parsed = email.message.Message()
        parsed["content-type"] = content_type
        subtype = parsed.get_content_subtype()
        if parsed.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
            return body
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        message, field = describe_validation_error({"type": "json_invalid", "loc": ("body", exc.pos)})
        raise BadRequestError(message, field=field) from None
    except ValueError:  # not UTF-8, UTF-16 or UTF-32
        raise BadRequestError("There was an error parsing the body") from None


def _validated_key(key: str | None) -> str | None:
    try:
        return IdempotencyKey.validate_python(key)
    except ValidationError as exc:
        raise invalid_input(exc, "header", IDEMPOTENCY_KEY_HEADER) from None


def _validated_body(document: Any) -> NotificationCreate:
    try:
        return NotificationCreate.model_validate(document, from_attributes=True)
    except ValidationError as exc:
        raise invalid_input(exc, "body") from None


accept_route = Route("/notifications", AcceptNotification(), methods=["POST"], name="post_notification")


def openapi_operation() -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /notifications's OpenAPI operation, and the component schemas it refers to, generated
    from the header, body and response models the endpoint validates with and answers in, as
    FastAPI generates its routes' (``gateway/app.py`` adds 413 and 503 to every operation)."""
    schemas, components = GenerateJsonSchema(ref_template="#/components/schemas/{model}").generate_definitions(
        inputs=[
            ("key", "validation", IdempotencyKey.core_schema),
            ("body", "validation", NotificationCreate.__pydantic_core_schema__),
            ("accepted", "serialization", NotificationAccepted.__pydantic_core_schema__),
        ]
    )
    errors = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    operation = {
        "tags": TAGS,
        "summary": "Post Notification",
        "description": "Accept a notification for delivery on each of the recipient's channels.",
        "operationId": "post_notification_notifications_post",
        "parameters": [
            {
                "name": IDEMPOTENCY_KEY_HEADER,
                "in": "header",
                "required": False,
                "schema": {**schemas[("key", "validation")], "title": IDEMPOTENCY_KEY_HEADER},
                "description": _IDEMPOTENCY_KEY_DESCRIPTION,
            }
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": schemas[("body", "validation")]}}},
        "responses": {
            "201": {"description": "Successful Response", "content": {"application/json": {"schema": schemas[("accepted", "serialization")]}}},
            **{
                str(status): {"content": errors, "description": description}
                for status, description in ((400, "Bad Request"), (403, "Forbidden"), (429, "Too Many Requests"))
            },
            "409": {"description": "Idempotency-Key reused with a different body.", "content": errors},
        },
    }
    return operation, components
